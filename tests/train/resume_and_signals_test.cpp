// Checkpoint/resume (bit-exact on CPU) and preemption signals (SIGTERM/SIGUSR1: every rank stops at
// the next step boundary after a checkpoint and exits 0).
#include <gtest/gtest.h>

#include <filesystem>

#include "train_fixture.h"

namespace dml::test {
namespace {

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
  const auto pa = checkpoint_parameters(full + "-last.pt", "small_convnet", 16, false);
  const auto pb = checkpoint_parameters(part + "-last.pt", "small_convnet", 16, false);
  for (const auto& [name, tensor] : pa) EXPECT_TRUE(torch::equal(tensor, pb.at(name))) << name;
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
  const auto pa = checkpoint_parameters(full + "-last.pt", "small_convnet", 16, false);
  const auto pb = checkpoint_parameters(part + "-last.pt", "small_convnet", 16, false);
  for (const auto& [name, tensor] : pa) EXPECT_TRUE(torch::equal(tensor, pb.at(name))) << name;
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

// SIGUSR1 (Slurm's pre-timeout signal) to ONE rank of two: both stop at the next step boundary,
// rank 0 writes the checkpoint, and the job exits 0; resuming continues from that step.
TEST_F(ResumeAndSignals, SignalToOneRankCheckpointsAndExitsZeroEverywhere) {
  const std::string prefix = dir_->file("signalled");
  const std::string marker = dir_->file("signal-marker");
  // $! is mpirun; its children are the ranks.
  std::string command = dist_train_command(args(prefix, 1000, 20), 2) + " > " + shell_quote(prefix + ".log") + " 2>&1 & pid=$!\n";
  // Wait for training to start (first log record), then signal the rank-1 process only.
  command += "for i in $(seq 1 600); do grep -q '\"loss\"' " + shell_quote(prefix + ".jsonl") +
             " 2>/dev/null && echo training-started && break; sleep 0.1; done\n";
  command += "rank1=$(pgrep -P $pid | sort -n | tail -1)\n";
  command += "kill -USR1 $rank1\nwait $pid; echo exit=$?\n";
  const CommandResult r = run_command("timeout " + std::to_string(kMaxOwnLaunchS) + " bash -c " + shell_quote(command));
  ASSERT_NE(r.output.find("training-started"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("exit=0"), std::string::npos) << r.output;
  ASSERT_TRUE(std::filesystem::exists(prefix + "-last.pt"));
  const MetricsLog before = read_metrics(prefix + ".jsonl");
  ASSERT_FALSE(before.loss_by_step.empty());
  const int64_t last_step = before.loss_by_step.rbegin()->first;
  EXPECT_LT(last_step, 1000 * 20);
  auto resume = args(prefix, 1000, 20);
  resume.insert(resume.end(), {"--resume", prefix + "-last.pt", "--max-steps", std::to_string(last_step + 2)});
  const CommandResult r2 = run_dist_train(resume, 2);
  EXPECT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_NE(r2.output.find(", step " + std::to_string(last_step)), std::string::npos) << r2.output;
  EXPECT_EQ(read_metrics(prefix + ".jsonl").loss_by_step.rbegin()->first, last_step + 2);
}

}  // namespace
}  // namespace dml::test
