// World-size invariance: for a model without batch statistics (or with frozen BN), R
// replicas of batch B train exactly like one replica of batch R*B: same losses every step, same
// evaluation, same parameters up to float summation order. Three layouts of one global batch of 24:
// 1 rank x 1 replica x 24, 2 MPI ranks x 12, 1 rank x 2 CPU replicas x 12 (and a global batch of
// 32 as 2 ranks x 2 replicas x 8).
#include <gtest/gtest.h>

#include "train_fixture.h"

namespace dml::test {
namespace {

class WorldSizeInvariance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_synthetic_shards(dir_->file("data"), /*train classes=*/12, /*test classes=*/5, /*per_class=*/10, /*side=*/16);
  }
  static void TearDownTestSuite() { delete dir_; }

  struct Run {
    MetricsLog metrics;
    std::map<std::string, torch::Tensor> params;
  };

  Run train(const std::string& name, const std::string& model, int ranks, int64_t batch_size, int64_t cpu_replicas,
            std::vector<std::string> extra = {}) {
    const std::string prefix = dir_->file(name);
    std::vector<std::string> args = {"--data-path", dir_->file("data"), "--model", model, "--crop-size", "14",
                                     "--embed-dim", "16", "--batch-k", "4", "--batch-size", std::to_string(batch_size),
                                     "--cpu-replicas", std::to_string(cpu_replicas), "--iterations-per-epoch", "3",
                                     "--epochs", "2", "--log-interval", "1", "--threads", "1", "--workers", "1",
                                     "--lr", "1e-3", "--save-model-prefix", prefix, "--metrics-file", prefix + ".jsonl"};
    args.insert(args.end(), extra.begin(), extra.end());
    const CommandResult result = run_dist_train(args, ranks);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return {read_metrics(prefix + ".jsonl"), checkpoint_parameters(prefix + "-last.pt", model, 16, false)};
  }

  static void expect_same_training(const Run& a, const Run& b, const char* what) {
    ASSERT_EQ(a.metrics.loss_by_step.size(), 6u) << what;
    ASSERT_EQ(b.metrics.loss_by_step.size(), 6u) << what;
    for (const auto& [step, loss] : a.metrics.loss_by_step) {
      EXPECT_NEAR(b.metrics.loss_by_step.at(step), loss, 1e-5 * std::max(1.0, std::abs(loss))) << what << " step " << step;
    }
    ASSERT_EQ(a.metrics.evals.size(), b.metrics.evals.size()) << what;
    for (size_t e = 0; e < a.metrics.evals.size(); ++e) {
      EXPECT_NEAR(a.metrics.evals[e].at("map@r"), b.metrics.evals[e].at("map@r"), 1e-6) << what;
      EXPECT_NEAR(a.metrics.evals[e].at("recall@1"), b.metrics.evals[e].at("recall@1"), 1e-6) << what;
    }
    ASSERT_EQ(a.params.size(), b.params.size());
    for (const auto& [name, tensor] : a.params) {
      const double diff = (tensor - b.params.at(name)).abs().max().item<double>();
      EXPECT_LT(diff, 2e-5) << what << " parameter " << name;
    }
  }

  static TempDir* dir_;
};
TempDir* WorldSizeInvariance::dir_ = nullptr;

TEST_F(WorldSizeInvariance, BatchNormFreeModelTrainsIdenticallyOnOneTwoRanksAndTwoReplicas) {
  const Run one = train("one", "small_convnet_nobn", /*ranks=*/0, 24, 1);
  const Run two_ranks = train("two_ranks", "small_convnet_nobn", /*ranks=*/2, 12, 1);
  const Run two_replicas = train("two_replicas", "small_convnet_nobn", /*ranks=*/0, 12, 2);
  expect_same_training(one, two_ranks, "2 ranks vs 1");
  expect_same_training(one, two_replicas, "2 CPU replicas vs 1");
  // The runs really trained: parameters moved away from the initial ones (seed 123, the default).
  const auto initial = fresh_parameters("small_convnet_nobn", 16, 123);
  double moved = 0;
  for (const auto& [name, tensor] : one.params) moved = std::max(moved, (tensor - initial.at(name)).abs().max().item<double>());
  EXPECT_GT(moved, 1e-3);
}

TEST_F(WorldSizeInvariance, FrozenBatchNormModelIsInvariantToo) {
  const Run one = train("bn_one", "small_convnet", /*ranks=*/0, 24, 1, {"--freeze-bn"});
  const Run two = train("bn_two", "small_convnet", /*ranks=*/2, 12, 1, {"--freeze-bn"});
  expect_same_training(one, two, "frozen BN, 2 ranks vs 1");
}

TEST_F(WorldSizeInvariance, TwoRanksWithTwoReplicasEachMatchOneReplica) {
  const Run one = train("r4_one", "small_convnet_nobn", /*ranks=*/0, 32, 1, {"--optimizer", "sgd"});
  const Run four = train("r4_four", "small_convnet_nobn", /*ranks=*/2, 8, 2, {"--optimizer", "sgd"});
  expect_same_training(one, four, "2 ranks x 2 replicas vs 1");
}

}  // namespace
}  // namespace dml::test
