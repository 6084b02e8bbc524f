// A fault on one rank ends the whole 2-rank job with a non-zero exit, that rank's message, and no
// hang: an injected read error (DML_FAULT_INJECT, include/dml/dist/fault_injection.h), a corrupt
// rank-local shard, and a rank killed with SIGKILL mid-training.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "synthetic_shards.h"
#include "test_support.h"

namespace dml::test {
namespace {

namespace fs = std::filesystem;

class RankFaults : public ::testing::Test {
 protected:
  // data/: both shards of each split; data0/, data1/: only that rank's shard of each split.
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_synthetic_shards(dir_->file("data"), 6, 4, 8, 16);
    for (int r = 0; r < 2; ++r) {
      const std::string own = dir_->file("data" + std::to_string(r));
      fs::create_directories(own);
      for (const char* split : {"train", "test"}) {
        const std::string name = std::string(split) + "-0000" + std::to_string(r) + "-of-00002.h5";
        fs::copy_file(dir_->file("data/" + name), own + "/" + name);
      }
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::vector<std::string> args(const std::string& prefix) {
    return {"--model", "small_convnet_nobn", "--crop-size", "14", "--embed-dim", "8", "--batch-size", "8",
            "--batch-k", "4", "--threads", "1", "--workers", "1", "--iterations-per-epoch", "100", "--epochs", "1000",
            "--log-interval", "1", "--no-progress", "--save-model-prefix", prefix, "--metrics-file", prefix + ".jsonl"};
  }
  // 2 ranks under mpirun, each started as `sh -c 'echo $$ > <pid_prefix><rank>; exec dist_train ...'`
  // (so the pid files name the ranks' processes), reading `data_path` (+ the rank with
  // rank_local_data). The shell script `then` runs after the job started in the background ($pid:
  // mpirun; it may set $killed to a time); the output ends with
  // "exit=<rc> seconds=<from start to exit> killed-to-exit=<from $killed to exit>".
  static CommandResult run_two_ranks(const std::vector<std::string>& a, const std::string& data_path,
                                     bool rank_local_data, const std::string& env, const std::string& then = "") {
    std::string inner = "echo $$ > " + shell_quote(dir_->file("pid")) + "$OMPI_COMM_WORLD_RANK; exec " +
                        shell_quote(built_executable("dist_train"));
    for (const auto& x : a) inner += " " + shell_quote(x);
    inner += " --data-path " + shell_quote(data_path) + (rank_local_data ? "$OMPI_COMM_WORLD_RANK" : "");
    if (rank_local_data) inner += " --rank-local-shards";
    std::string script = "start=$(date +%s)\n" + mpirun_command(2) + " -x DML_NO_PROGRESS=1 " + env + " sh -c " +
                         shell_quote(inner) + " 2>&1 & pid=$!\n" + then +
                         "wait $pid; rc=$?; end=$(date +%s)\n"
                         "echo exit=$rc seconds=$(( end - start )) killed-to-exit=$(( end - ${killed:-$start} ))\n";
    return run_command("timeout 170 bash -c " + shell_quote(script));
  }
  static void expect_ended_within(const CommandResult& r, int seconds) {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex("exit=([0-9]+) seconds=([0-9]+)"))) << r.output;
    EXPECT_NE(std::stoi(m[1]), 0) << r.output;
    EXPECT_LE(std::stoi(m[2]), seconds) << "the job hung after a fault on one rank\n" << r.output;
  }
  static TempDir* dir_;
};
TempDir* RankFaults::dir_ = nullptr;

TEST_F(RankFaults, ReadErrorOnOneRankEndsTheJobWithThatRanksMessage) {
  const CommandResult r = run_two_ranks(args(dir_->file("read_error")), dir_->file("data"), false,
                                        "-x DML_FAULT_INJECT=read_error:rank=1:step=5");
  expect_ended_within(r, 60);
  EXPECT_NE(r.output.find("[train] error (rank 1): train loader: reading the batch of step 5 failed: injected read "
                          "error"),
            std::string::npos)
      << r.output;
  // Rank 0 reports no failure of its own; at most that rank 1's process ended (when rank 1's exit
  // reaches it before the launcher ends the job).
  std::smatch line;
  const std::regex rank0_error(R"(error \(rank 0\): ([^\n]*))");
  for (auto it = r.output.cbegin(); std::regex_search(it, r.output.cend(), line, rank0_error); it = line.suffix().first) {
    EXPECT_EQ(line[1].str().rfind("lost rank 1 ", 0), 0u) << "only rank 1 failed\n" << r.output;
  }
}

TEST_F(RankFaults, CorruptRankLocalShardOnOneRankStopsAllRanks) {
  const std::string broken = dir_->file("corrupt");
  for (int r = 0; r < 2; ++r) fs::copy(dir_->file("data" + std::to_string(r)), broken + std::to_string(r));
  // Rank 1's train shard: the first half of the file, then garbage.
  const std::string shard = broken + "1/train-00001-of-00002.h5";
  const auto size = fs::file_size(shard);
  fs::resize_file(shard, size / 2);
  std::ofstream(shard, std::ios::app) << std::string(64, '\x5a');
  const CommandResult r = run_two_ranks(args(dir_->file("corrupt_run")), broken, true, "");
  expect_ended_within(r, 60);
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\] error \(rank 1\): [^\n]*train-00001-of-00002\.h5)")))
      << r.output;
  EXPECT_EQ(r.output.find("\"loss\""), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_->file("corrupt_run-last.pt")));
}

TEST_F(RankFaults, KilledRankEndsTheJobNamingTheLostRank) {
  const std::string prefix = dir_->file("killed");
  const std::string then = "for i in $(seq 1 900); do grep -q '\"loss\"' " + shell_quote(prefix + ".jsonl") +
                           " 2>/dev/null && echo training-started && break; sleep 0.1; done\n"
                           "kill -9 $(cat " + shell_quote(dir_->file("pid1")) + "); killed=$(date +%s)\n";
  const CommandResult r = run_two_ranks(args(prefix), dir_->file("data"), false, "", then);
  ASSERT_NE(r.output.find("training-started"), std::string::npos) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("exit=([0-9]+) seconds=[0-9]+ killed-to-exit=([0-9]+)")))
      << r.output;
  EXPECT_NE(std::stoi(m[1]), 0) << r.output;
  EXPECT_LE(std::stoi(m[2]), 60) << "the job hung after a rank died\n" << r.output;
  // dml's own line, from rank 0 (which watches the processes of the ranks on its node while it
  // waits in a collective), names the lost rank, its pid and the operation it was waiting in.
  std::ifstream pid_file(dir_->file("pid1"));
  std::string pid1;
  pid_file >> pid1;
  ASSERT_FALSE(pid1.empty());
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\[dist\] error \(rank 0\): lost rank 1 \(pid )" + pid1 +
                                                         R"( on host [^)]+\): its process ended while rank 0 waited in )")))
      << r.output;
}

}  // namespace
}  // namespace dml::test
