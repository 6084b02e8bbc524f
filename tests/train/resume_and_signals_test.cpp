// Checkpoint/resume: bit-exact on CPU (losses, parameters and BatchNorm buffers), and strict about
// the run it continues. Preemption signals and the resume after them: tests/faults/signal_resume_test.cpp.
#include <gtest/gtest.h>

#include "train_fixture.h"

namespace dml::test {
namespace {

// Every parameter and every buffer (BatchNorm's running statistics) of the small_convnet in
// checkpoint `actual` equals that in `expected`.
void expect_same_model(const std::string& expected, const std::string& actual) {
  const ModelState a = checkpoint_state(expected, "small_convnet", 16, false);
  const ModelState b = checkpoint_state(actual, "small_convnet", 16, false);
  ASSERT_FALSE(a.parameters.empty());
  ASSERT_FALSE(a.buffers.empty()) << "small_convnet has BatchNorm buffers";
  ASSERT_EQ(b.parameters.size(), a.parameters.size());
  ASSERT_EQ(b.buffers.size(), a.buffers.size());
  for (const auto& [name, tensor] : a.parameters) {
    ASSERT_TRUE(b.parameters.count(name)) << name;
    EXPECT_TRUE(torch::equal(tensor, b.parameters.at(name))) << "parameter " << name;
  }
  for (const auto& [name, tensor] : a.buffers) {
    ASSERT_TRUE(b.buffers.count(name)) << name;
    EXPECT_TRUE(torch::equal(tensor, b.buffers.at(name))) << "buffer " << name;
  }
}

class ResumeAndSignals : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_synthetic_shards(dir_->file("data"), 8, 4, 10, 16);
  }
  static void TearDownTestSuite() { delete dir_; }

  std::vector<std::string> args(const std::string& prefix, int64_t epochs, int64_t per_epoch,
                                const std::string& embed_dim = "16") {
    return {"--data-path", dir_->file("data"), "--model", "small_convnet", "--crop-size", "14", "--embed-dim", embed_dim,
            "--batch-k", "4", "--batch-size", "16", "--iterations-per-epoch", std::to_string(per_epoch), "--epochs",
            std::to_string(epochs), "--log-interval", "1", "--threads", "1", "--workers", "2", "--lr", "1e-3",
            "--save-model-prefix", prefix, "--metrics-file", prefix + ".jsonl"};
  }
  static TempDir* dir_;
};
TempDir* ResumeAndSignals::dir_ = nullptr;

TEST_F(ResumeAndSignals, InterruptedRunResumedEqualsUninterruptedRunBitExactly) {
  // Uninterrupted: 2 epochs of 4 steps. Interrupted: stop after 6 steps (mid-epoch), then resume.
  const std::string full = dir_->file("full"), part = dir_->file("part");
  ASSERT_EQ(run_dist_train(args(full, 2, 4), 0).exit_code, 0);
  auto first = args(part, 2, 4);
  first.insert(first.end(), {"--max-steps", "6"});
  const CommandResult r1 = run_dist_train(first, 0);
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  auto second = args(part, 2, 4);
  second.insert(second.end(), {"--resume", part + "-last.pt"});
  const CommandResult r2 = run_dist_train(second, 0);
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_NE(r2.output.find("resumed from"), std::string::npos);

  const MetricsLog a = read_metrics(full + ".jsonl"), b = read_metrics(part + ".jsonl");
  ASSERT_EQ(a.loss_by_step.size(), 8u);
  ASSERT_EQ(b.loss_by_step.size(), 8u);  // steps 1-6, then 7-8 after the resume
  for (const auto& [step, loss] : a.loss_by_step) EXPECT_EQ(b.loss_by_step.at(step), loss) << "step " << step;
  expect_same_model(full + "-last.pt", part + "-last.pt");
}

// Two ranks with BatchNorm in training mode: each rank's running statistics differ, and checkpoints
// take rank 0's; the resumed run must still equal the uninterrupted one.
TEST_F(ResumeAndSignals, TwoRankResumeWithBatchNormStatisticsIsBitExact) {
  const std::string full = dir_->file("full2"), part = dir_->file("part2");
  ASSERT_EQ(run_dist_train(args(full, 2, 4), 2).exit_code, 0);
  auto first = args(part, 2, 4);
  first.insert(first.end(), {"--max-steps", "6"});
  ASSERT_EQ(run_dist_train(first, 2).exit_code, 0);
  auto second = args(part, 2, 4);
  second.insert(second.end(), {"--resume", part + "-last.pt"});
  const CommandResult r = run_dist_train(second, 2);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const MetricsLog a = read_metrics(full + ".jsonl"), b = read_metrics(part + ".jsonl");
  ASSERT_EQ(a.loss_by_step.size(), 8u);
  for (const auto& [step, loss] : a.loss_by_step) EXPECT_EQ(b.loss_by_step.at(step), loss) << "step " << step;
  EXPECT_EQ(a.evals.back().at("map@r"), b.evals.back().at("map@r"));
  expect_same_model(full + "-last.pt", part + "-last.pt");
}

TEST_F(ResumeAndSignals, ResumeRefusesAnIncompatibleRun) {
  const std::string prefix = dir_->file("incompatible");
  auto first = args(prefix, 1, 2);
  ASSERT_EQ(run_dist_train(first, 0).exit_code, 0);
  auto second = args(prefix, 1, 2, /*embed_dim=*/"32");
  second.insert(second.end(), {"--resume", prefix + "-last.pt"});
  const CommandResult r = run_dist_train(second, 0);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(prefix + "-last.pt: this run differs from the checkpoint in 1 option(s)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("embed-dim: 16 in the checkpoint, 32 in this run"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace dml::test
