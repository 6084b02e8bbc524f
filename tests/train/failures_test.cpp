// Bad flags and data paths fail before any work with their messages; a rank that dies ends the
// whole job with an error instead of leaving the others waiting.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

#include "train_fixture.h"

namespace dml::test {
namespace {

// Bad flags fail before any work: a run gets 120 s, and BadFlagsFailBeforeAnyWork chains five.
constexpr int kFailingRunTimeoutS = 120;
#ifdef DML_CTEST_TIMEOUT_S
static_assert(5 * kFailingRunTimeoutS + 120 <= DML_CTEST_TIMEOUT_S, "ctest's limit must exceed five failing runs");
#endif

class Failures : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_synthetic_shards(dir_->file("data"), 6, 4, 8, 16);
  }
  static void TearDownTestSuite() { delete dir_; }
  std::vector<std::string> base(const std::string& name = "failure") {
    return {"--data-path", dir_->file("data"), "--crop-size", "14", "--embed-dim", "16",
            "--threads", "1", "--workers", "1", "--save-model-prefix", dir_->file(name)};
  }
  std::vector<std::string> with_defaults(std::vector<std::string> extra) {
    // --model and --batch-size unless the test sets them
    auto has = [&](const char* flag) { return std::find(extra.begin(), extra.end(), flag) != extra.end(); };
    if (!has("--model")) extra.insert(extra.end(), {"--model", "small_convnet"});
    if (!has("--batch-size")) extra.insert(extra.end(), {"--batch-size", "8"});
    if (!has("--batch-k")) extra.insert(extra.end(), {"--batch-k", "4"});
    return extra;
  }
  CommandResult run_with(std::vector<std::string> args, std::vector<std::string> extra, int ranks = 0) {
    extra = with_defaults(std::move(extra));
    args.insert(args.end(), extra.begin(), extra.end());
    return run_dist_train(args, ranks, kFailingRunTimeoutS);
  }
  static TempDir* dir_;
};
TempDir* Failures::dir_ = nullptr;

TEST_F(Failures, MissingDataPathNamesTheFlag) {
  const CommandResult r = run_with({"--data-path", dir_->file("nowhere")}, {});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--data-path: data path " + dir_->file("nowhere") + ": no such directory"), std::string::npos) << r.output;
}

TEST_F(Failures, RawCubDirectoryPrintsThePreparationCommand) {
  const std::string cub = dir_->file("CUB_200_2011");
  std::filesystem::create_directories(cub);
  std::ofstream(cub + "/images.txt") << "1 001.Black_footed_Albatross/a.jpg\n";
  std::ofstream(cub + "/bounding_boxes.txt") << "1 0 0 10 10\n";
  const CommandResult r = run_with({"--data-path", cub}, {});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("dml_prepare --source cub --input " + cub), std::string::npos) << r.output;
}

TEST_F(Failures, BadFlagsFailBeforeAnyWork) {
  CommandResult r = run_with(base(), {"--batch-size", "10"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--batch-size: batch size 10 is not a multiple of batch_k 4"), std::string::npos) << r.output;
  r = run_with(base(), {"--model", "resnet51_v1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("resnet50_v1"), std::string::npos) << r.output;  // the valid names are listed
  r = run_with(base(), {"--batch-size", "40"});  // 10 classes per replica, the split has 6
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--batch-size: batch size 40 / batch_k 4 = 10 classes per replica"), std::string::npos)
      << r.output;
  r = run_with(base(), {"--crop-size", "20"});  // images are 16 px
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--crop-size: crop size 20 does not fit the 16x16 images"), std::string::npos) << r.output;
  r = run_with(base(), {"--gpus", "0"});  // no CUDA here
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--gpus: CUDA is not available"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir_->file("failure-last.pt")));
}

TEST_F(Failures, BadFlagsUnderMpirunEndEveryRank) {
  const CommandResult r = run_with(base(), {"--model", "no_such_model"}, /*ranks=*/2);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 124) << "timed out: a rank was left waiting\n" << r.output;
}

TEST_F(Failures, KilledRankEndsTheJobWithAnErrorWithinAMinute) {
  const std::string prefix = dir_->file("killed");
  auto args = base("killed");
  args.insert(args.end(), {"--model", "small_convnet", "--batch-size", "8", "--batch-k", "4", "--epochs", "1000", "--iterations-per-epoch",
                           "100", "--log-interval", "1", "--metrics-file", prefix + ".jsonl"});
  // $! is mpirun; its children are the ranks. Kill the last-started rank once training runs.
  std::string command = dist_train_command(args, 2) + " > /dev/null 2>&1 & pid=$!\n";
  command += "for i in $(seq 1 600); do grep -q '\"loss\"' " + shell_quote(prefix + ".jsonl") +
             " 2>/dev/null && echo training-started && break; sleep 0.1; done\n";
  command += "kill -9 $(pgrep -P $pid | sort -n | tail -1); killed=$(date +%s)\n";
  command += "wait $pid; rc=$?; echo exit=$rc seconds=$(( $(date +%s) - killed ))\n";
  const CommandResult r = run_command("timeout 180 bash -c " + shell_quote(command));
  ASSERT_NE(r.output.find("training-started"), std::string::npos) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("exit=([0-9]+) seconds=([0-9]+)"))) << r.output;
  EXPECT_NE(std::stoi(m[1]), 0) << r.output;
  EXPECT_LE(std::stoi(m[2]), 60) << "the job hung after a rank died\n" << r.output;
}

}  // namespace
}  // namespace dml::test
