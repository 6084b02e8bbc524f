// Rank-local shards: each rank opens only its own shards (here: the other rank's files do not exist
// in its data directory at all), and the run equals one rank reading every shard with twice the batch.
#include <gtest/gtest.h>

#include <filesystem>

#include "train_fixture.h"

namespace dml::test {
namespace {

namespace fs = std::filesystem;

class RankLocalShards : public ::testing::Test {
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
  static std::vector<std::string> args(const std::string& prefix, const std::string& batch) {
    return {"--model", "small_convnet_nobn", "--crop-size", "14", "--embed-dim", "8", "--batch-size", batch,
            "--batch-k", "4", "--threads", "1", "--workers", "1", "--iterations-per-epoch", "6", "--epochs", "2",
            "--log-interval", "1", "--lr", "1e-2", "--recall-k", "1,2", "--rank-local-shards", "--no-progress",
            "--save-model-prefix", prefix, "--metrics-file", prefix + ".jsonl"};
  }
  // 2 ranks, rank r reading dir_/data<r>.
  static CommandResult run_two_ranks(const std::vector<std::string>& a, const std::string& data_prefix) {
    std::string inner = "exec " + shell_quote(built_executable("dist_train"));
    for (const auto& x : a) inner += " " + shell_quote(x);
    inner += " --data-path " + shell_quote(data_prefix) + "$OMPI_COMM_WORLD_RANK";
    return run_command("timeout 240 env " + mpirun_command(2) + " -x DML_NO_PROGRESS=1 sh -c " + shell_quote(inner));
  }
  static TempDir* dir_;
};
TempDir* RankLocalShards::dir_ = nullptr;

TEST_F(RankLocalShards, TwoRanksOnTheirOwnShardsEqualOneRankOnAll) {
  std::vector<std::string> one = args(dir_->file("one"), "16");
  one.insert(one.end(), {"--data-path", dir_->file("data")});
  const CommandResult r1 = run_dist_train(one, 0);
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  const CommandResult r2 = run_two_ranks(args(dir_->file("two"), "8"), dir_->file("data"));
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_NE(r2.output.find("rank 0 holds train shards 0..0"), std::string::npos) << r2.output;
  EXPECT_NE(r2.output.find("rank 1 holds train shards 1..1"), std::string::npos) << r2.output;
  const auto a = read_metrics(dir_->file("one.jsonl")).loss_by_step, b = read_metrics(dir_->file("two.jsonl")).loss_by_step;
  ASSERT_EQ(a.size(), 12u);
  ASSERT_EQ(b.size(), 12u);
  for (const auto& [step, loss] : a) {
    ASSERT_TRUE(b.count(step)) << step;
    EXPECT_NEAR(loss, b.at(step), 1e-5) << "step " << step;
  }
  EXPECT_GT(std::abs(a.begin()->second - a.rbegin()->second), 1e-4);  // the runs train
  const auto pa = checkpoint_parameters(dir_->file("one-last.pt"), "small_convnet_nobn", 8, false);
  const auto pb = checkpoint_parameters(dir_->file("two-last.pt"), "small_convnet_nobn", 8, false);
  for (const auto& [name, t] : pa) EXPECT_TRUE(torch::allclose(t, pb.at(name), 1e-4, 2e-5)) << name;
}

TEST_F(RankLocalShards, MissingOwnShardNamesRankHostAndFile) {
  const std::string broken = dir_->file("broken");
  fs::create_directories(broken + "0");
  fs::create_directories(broken + "1");
  for (const char* split : {"train", "test"}) {
    const std::string name = std::string(split) + "-00000-of-00002.h5";
    fs::copy_file(dir_->file("data/" + name), broken + "0/" + name);
  }
  // rank 1 finds only rank 0's shard in its directory
  fs::copy_file(dir_->file("data/train-00000-of-00002.h5"), broken + "1/train-00000-of-00002.h5");
  const CommandResult r = run_two_ranks(args(dir_->file("b"), "8"), broken);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("rank 1 on host "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("train-00001-of-00002.h5 of split 'train' is missing"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dml::test
