// dist_train --precision bf16 --channels-last on 2 ranks: trains with losses close to the fp32
// run's at the same seed, and its checkpoint holds float32 weights.
#include <gtest/gtest.h>

#include "train_fixture.h"

namespace dml::test {
namespace {

TEST(PrecisionRun, Bf16ChannelsLastTrainsCloseToFp32WithFloat32Checkpoints) {
  TempDir dir;
  write_synthetic_shards(dir.file("data"), 8, 4, 10, 16);
  auto args = [&](const std::string& prefix) {
    return std::vector<std::string>{"--data-path", dir.file("data"), "--model", "small_convnet", "--crop-size", "14",
                                    "--embed-dim", "16", "--batch-k", "4", "--batch-size", "16",
                                    "--iterations-per-epoch", "4", "--epochs", "1", "--log-interval", "1",
                                    "--threads", "1", "--workers", "1", "--save-model-prefix", prefix,
                                    "--metrics-file", prefix + ".jsonl"};
  };
  const std::string fp32 = dir.file("fp32"), bf16 = dir.file("bf16");
  ASSERT_EQ(run_dist_train(args(fp32), 2).exit_code, 0);
  auto low = args(bf16);
  low.insert(low.end(), {"--precision", "bf16", "--channels-last"});
  const CommandResult r = run_dist_train(low, 2);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("precision = bf16"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("channels-last = 1"), std::string::npos) << r.output;
  const MetricsLog a = read_metrics(fp32 + ".jsonl"), b = read_metrics(bf16 + ".jsonl");
  ASSERT_EQ(a.loss_by_step.size(), 4u);
  ASSERT_EQ(b.loss_by_step.size(), 4u);
  bool differs = false;
  for (const auto& [step, loss] : a.loss_by_step) {
    EXPECT_NEAR(b.loss_by_step.at(step), loss, 0.05 * loss) << "step " << step;
    differs = differs || b.loss_by_step.at(step) != loss;
  }
  EXPECT_TRUE(differs) << "bf16 must change the arithmetic";
  const ModelState state = checkpoint_state(bf16 + "-last.pt", "small_convnet", 16, false);
  for (const auto& [name, tensor] : state.parameters) {
    EXPECT_EQ(tensor.scalar_type(), torch::kFloat32) << name;
    EXPECT_TRUE(torch::isfinite(tensor).all().item<bool>()) << name;
  }
}

TEST(PrecisionRun, Fp16OnCpuIsRefusedBeforeTraining) {
  const CommandResult r = run_dist_train({"--precision", "fp16", "--gpus", "cpu", "--data-path", "/nonexistent"}, 0);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--precision: fp16 autocast needs a CUDA device"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("use bf16 on CPUs"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dml::test
