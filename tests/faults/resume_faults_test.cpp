// Resume is strict and complete: options that change the run must match the checkpoint (all
// differences in one error, or one warning with --resume-override), learned beta is never dropped or
// invented, the best epoch's metrics survive an interruption, and a checkpoint that some rank cannot
// see is named at start.
#include <gtest/gtest.h>

#include <filesystem>

#include "synthetic_shards.h"
#include "test_support.h"

namespace dml::test {
namespace {

constexpr int kRunTimeoutS = 240;

std::string dist_train_args(const std::vector<std::string>& args) {
  std::string command = shell_quote(built_executable("dist_train"));
  for (const auto& a : args) command += " " + shell_quote(a);
  return command;
}

// ranks == 0: one process without a launcher; else under mpirun -np ranks.
CommandResult run_train(const std::vector<std::string>& args, int ranks = 0) {
  const std::string launcher = ranks > 0 ? mpirun_command(ranks) + " -x DML_NO_PROGRESS=1 " : "DML_NO_PROGRESS=1 ";
  return run_command("timeout " + std::to_string(kRunTimeoutS) + " env " + launcher + dist_train_args(args));
}

// The final table (print_summary's, after the "Steps run" line), or "" when there is none.
std::string final_table(const std::string& output) {
  const size_t steps = output.rfind("Steps run:");
  if (steps == std::string::npos) return "";
  const size_t start = output.find("\n\n", steps);
  return start == std::string::npos ? "" : output.substr(start + 2);
}

class ResumeFaults : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_synthetic_shards(dir_->file("data"), 8, 4, 10, 16);
    // The shared checkpoint: 1 epoch of 2 steps with learned beta (lr-beta 0.1, the default).
    const CommandResult r = run_train(args(dir_->file("base"), 1, 2));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::vector<std::string> args(const std::string& prefix, int64_t epochs, int64_t per_epoch) {
    return {"--data-path", dir_->file("data"), "--model", "small_convnet", "--crop-size", "14", "--embed-dim", "16",
            "--batch-k", "4", "--batch-size", "16", "--iterations-per-epoch", std::to_string(per_epoch), "--epochs",
            std::to_string(epochs), "--log-interval", "1", "--threads", "1", "--workers", "2", "--lr", "1e-3",
            "--save-model-prefix", prefix, "--metrics-file", prefix + ".jsonl"};
  }
  static std::string base() { return dir_->file("base-last.pt"); }
  static TempDir* dir_;
};
TempDir* ResumeFaults::dir_ = nullptr;

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& extra) {
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

TEST_F(ResumeFaults, ChangedOptionsAreRefusedListingEveryDifference) {
  const CommandResult r = run_train(with(args(dir_->file("changed"), 2, 2),
                                         {"--resume", base(), "--lr", "1e-2", "--margin", "0.3", "--steps", "7"}));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(base() + ": this run differs from the checkpoint in 3 option(s) that change the run"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("margin: 0.2 in the checkpoint, 0.3 in this run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lr: 0.001 in the checkpoint, 0.01 in this run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("steps: 12,14,16,18 in the checkpoint, 7 in this run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--resume-override"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("resumed from"), std::string::npos) << r.output;
  // Options that do not change the run are not compared (here: threads, workers, epochs, log interval).
  EXPECT_EQ(r.output.find("threads:"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("epochs:"), std::string::npos) << r.output;
}

TEST_F(ResumeFaults, ResumeOverrideWarnsWithTheSameListAndContinues) {
  const std::string prefix = dir_->file("overridden");
  const CommandResult r = run_train(with(args(prefix, 2, 2), {"--resume", base(), "--lr", "1e-2", "--margin", "0.3",
                                                              "--steps", "7", "--resume-override"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("continuing with 3 option(s) that differ from the checkpoint"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("margin: 0.2 in the checkpoint, 0.3 in this run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lr: 0.001 in the checkpoint, 0.01 in this run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("steps: 12,14,16,18 in the checkpoint, 7 in this run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resumed from " + base() + " at epoch 1, step 2"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(prefix + "-last.pt"));
}

TEST_F(ResumeFaults, FixedBetaOnALearnedBetaCheckpointIsRefused) {
  const CommandResult r = run_train(with(args(dir_->file("fixed-beta"), 2, 2), {"--resume", base(), "--lr-beta", "0"}));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(base() + ": the checkpoint learned beta"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("but this run keeps it fixed; resume with a positive beta learning rate"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("resumed from"), std::string::npos) << r.output;
}

TEST_F(ResumeFaults, LearnedBetaOnAFixedBetaCheckpointIsRefused) {
  const std::string fixed = dir_->file("fixed");
  const CommandResult r1 = run_train(with(args(fixed, 1, 2), {"--lr-beta", "0"}));
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  // lr-beta differs too, but the beta mismatch cannot be overridden, so it is the error.
  const CommandResult r = run_train(with(args(dir_->file("learned"), 2, 2),
                                         {"--resume", fixed + "-last.pt", "--resume-override"}));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(fixed + "-last.pt: the checkpoint kept beta fixed but this run learns it; resume with beta fixed"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("resumed from"), std::string::npos) << r.output;
}

TEST_F(ResumeFaults, FinalTableAfterAnInterruptedRunShowsTheSameBestAsAnUninterruptedOne) {
  const std::string full = dir_->file("table-full"), part = dir_->file("table-part");
  const CommandResult a = run_train(args(full, 3, 2));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  // Interrupted at the end of epoch 1 (step 4 of 6), then resumed for the last epoch.
  const CommandResult b1 = run_train(with(args(part, 3, 2), {"--max-steps", "4"}));
  ASSERT_EQ(b1.exit_code, 0) << b1.output;
  const CommandResult b2 = run_train(with(args(part, 3, 2), {"--resume", part + "-last.pt"}));
  ASSERT_EQ(b2.exit_code, 0) << b2.output;
  const std::string ta = final_table(a.output), tb = final_table(b2.output);
  ASSERT_NE(ta.find("best (epoch"), std::string::npos) << a.output;
  EXPECT_NE(tb.find("best (epoch"), std::string::npos) << b2.output;
  EXPECT_EQ(ta, tb) << "uninterrupted:\n" << a.output << "\nresumed:\n" << b2.output;
}

TEST_F(ResumeFaults, CheckpointMissingOnOneRankIsNamedAtStart) {
  // Each rank is given its own path; only rank 0's file exists.
  std::filesystem::copy_file(base(), dir_->file("rank0-last.pt"));
  const std::string per_rank = shell_quote(dir_->file("rank")) + "\"$OMPI_COMM_WORLD_RANK\"-last.pt";
  const std::string inner = dist_train_args(args(dir_->file("missing"), 2, 2)) + " --resume " + per_rank;
  const CommandResult r = run_command("timeout " + std::to_string(kRunTimeoutS) + " " + mpirun_command(2) +
                                      " -x DML_NO_PROGRESS=1 sh -c " + shell_quote(inner));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("the checkpoint to resume from is missing on rank(s) 1 of 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("must be visible to every rank"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("resumed from"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dml::test
