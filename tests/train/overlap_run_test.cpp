// 2 ranks: the gradient all-reduce overlapped with backward (--allreduce-overlap on) trains exactly
// like the all-reduce after backward (off): every logged loss and every final weight are equal.
#include <gtest/gtest.h>

#include "train_fixture.h"

namespace dml::test {
namespace {

TEST(OverlapRun, OverlappedAllReduceTrainsBitExactlyLikeAllReduceAfterBackward) {
  TempDir dir;
  write_synthetic_shards(dir.file("data"), 8, 4, 10, 16);
  auto args = [&](const std::string& prefix, const std::string& overlap) {
    return std::vector<std::string>{"--data-path", dir.file("data"), "--model", "small_convnet", "--crop-size", "14",
                                    "--embed-dim", "16", "--batch-k", "4", "--batch-size", "16",
                                    "--iterations-per-epoch", "6", "--epochs", "1", "--log-interval", "1",
                                    "--threads", "1", "--workers", "1", "--save-model-prefix", prefix,
                                    "--metrics-file", prefix + ".jsonl", "--allreduce-overlap", overlap};
  };
  const std::string on = dir.file("on"), off = dir.file("off");
  const CommandResult r = run_dist_train(args(on, "on"), 2);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("buckets, started during backward"), std::string::npos) << r.output;
  const CommandResult r_off = run_dist_train(args(off, "off"), 2);
  ASSERT_EQ(r_off.exit_code, 0) << r_off.output;
  EXPECT_NE(r_off.output.find("buckets, after backward"), std::string::npos) << r_off.output;
  const MetricsLog a = read_metrics(on + ".jsonl"), b = read_metrics(off + ".jsonl");
  ASSERT_EQ(a.loss_by_step.size(), 6u);
  for (const auto& [step, loss] : b.loss_by_step) EXPECT_EQ(a.loss_by_step.at(step), loss) << "step " << step;
  const ModelState sa = checkpoint_state(on + "-last.pt", "small_convnet", 16, false);
  const ModelState sb = checkpoint_state(off + "-last.pt", "small_convnet", 16, false);
  for (const auto& [name, tensor] : sb.parameters) EXPECT_TRUE(torch::equal(tensor, sa.parameters.at(name))) << name;
}

}  // namespace
}  // namespace dml::test
