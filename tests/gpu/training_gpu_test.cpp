// GPU suite: dist_train on the GPU. A smoke test of the GPU path (bf16 + channels-last ResNet, fp16 with
// loss scaling), fp32 on the GPU tracking the same run on the CPU, and world-size invariance on GPUs:
// one GPU with batch 2B trains like two ranks (one GPU each, NCCL) with batch B, and like one rank driving
// two GPU replicas of B (needs 2 GPUs). fp32 runs switch TF32 off (NVIDIA_TF32_OVERRIDE=0, honoured by
// cuBLAS and cuDNN; dist_train has no flag for it), so GPU results differ from exact ones only by
// summation order and kernel choice: compared with tolerances (the CPU suites in tests/train compare
// tighter), and each comparison prints its largest difference ("[gpu] ..."). Skips without an NCCL build
// or enough CUDA devices (gpu_test_support.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "../train/train_fixture.h"
#include "dml/model/embedding_net.h"
#include "gpu_test_support.h"

namespace dml::test {
namespace {

struct TrainRun {
  CommandResult result;
  MetricsLog metrics;
  std::string prefix;
};

class GpuTraining : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_synthetic_shards(dir_->file("data"), /*train classes=*/12, /*test classes=*/5, /*per_class=*/10, /*side=*/32);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { DML_SKIP_UNLESS_GPUS(1); }

  // dist_train on the synthetic shards: 2 epochs x 3 steps, a log record every step, an evaluation per
  // epoch. gpus: --gpus (empty: not given, i.e. auto = the local rank's GPU); ranks as run_dist_train.
  static TrainRun train(const std::string& name, const std::string& model, int ranks, int64_t batch_size,
                   const std::string& gpus, std::vector<std::string> extra = {}) {
    const std::string prefix = dir_->file(name);
    std::vector<std::string> args = {"--data-path", dir_->file("data"), "--model", model, "--crop-size", "28",
                                     "--embed-dim", "16", "--batch-k", "4", "--batch-size", std::to_string(batch_size),
                                     "--iterations-per-epoch", "3", "--epochs", "2", "--log-interval", "1",
                                     "--threads", "2", "--workers", "2", "--lr", "1e-3",
                                     "--save-model-prefix", prefix, "--metrics-file", prefix + ".jsonl"};
    if (!gpus.empty()) args.insert(args.end(), {"--gpus", gpus});
    args.insert(args.end(), extra.begin(), extra.end());
    // mpirun's local ranks inherit its environment.
    TrainRun run{run_command("timeout " + std::to_string(kDistTrainTimeoutS) + " env NVIDIA_TF32_OVERRIDE=0 " +
                        dist_train_command(args, ranks)),
            {}, prefix};
    EXPECT_EQ(run.result.exit_code, 0) << name << ":\n" << run.result.output;
    run.metrics = read_metrics(prefix + ".jsonl");
    return run;
  }

  static void expect_finite_losses(const TrainRun& run, size_t steps) {
    ASSERT_EQ(run.metrics.loss_by_step.size(), steps) << run.result.output;
    for (const auto& [step, loss] : run.metrics.loss_by_step) {
      EXPECT_TRUE(std::isfinite(loss) && loss > 0) << "step " << step << " loss " << loss;
    }
  }

  // Same losses (relative), evaluations and parameters (absolute) up to the tolerances; prints the
  // largest differences seen.
  static void expect_same_training(const TrainRun& a, const TrainRun& b, const std::string& model, const char* what,
                                   double loss_rtol, double param_atol, double eval_atol) {
    ASSERT_EQ(a.metrics.loss_by_step.size(), 6u) << what << "\n" << a.result.output;
    ASSERT_EQ(b.metrics.loss_by_step.size(), 6u) << what << "\n" << b.result.output;
    double max_rel = 0;
    for (const auto& [step, loss] : a.metrics.loss_by_step) {
      const double other = b.metrics.loss_by_step.at(step);
      max_rel = std::max(max_rel, std::abs(other - loss) / std::max(1.0, std::abs(loss)));
      EXPECT_NEAR(other, loss, loss_rtol * std::max(1.0, std::abs(loss))) << what << " step " << step;
    }
    ASSERT_EQ(a.metrics.evals.size(), b.metrics.evals.size()) << what;
    double max_eval = 0;
    for (size_t e = 0; e < a.metrics.evals.size(); ++e) {
      const double d = std::abs(a.metrics.evals[e].at("map@r") - b.metrics.evals[e].at("map@r"));
      max_eval = std::max(max_eval, d);
      EXPECT_LE(d, eval_atol) << what << " evaluation " << e;
    }
    const auto pa = checkpoint_parameters(a.prefix + "-last.pt", model, 16, false);
    const auto pb = checkpoint_parameters(b.prefix + "-last.pt", model, 16, false);
    ASSERT_EQ(pa.size(), pb.size());
    double max_param = 0;
    for (const auto& [name, tensor] : pa) {
      const double diff = (tensor - pb.at(name)).abs().max().item<double>();
      max_param = std::max(max_param, diff);
      EXPECT_LT(diff, param_atol) << what << " parameter " << name;
    }
    std::printf("[gpu] %s: max relative loss difference %.3g (tolerance %.3g), max map@r difference %.3g, "
                "max parameter difference %.3g (tolerance %.3g)\n",
                what, max_rel, loss_rtol, max_eval, max_param, param_atol);
  }

  static TempDir* dir_;
};
TempDir* GpuTraining::dir_ = nullptr;

TEST_F(GpuTraining, Bf16ChannelsLastResNetTrainsOnOneGpuWithNccl) {
  const TrainRun r = train("bf16", "resnet18_v1", /*ranks=*/0, 20, "0",
                      {"--small-input-stem", "--precision", "bf16", "--channels-last"});
  EXPECT_NE(r.result.output.find("ranks 1 (nccl), replicas per rank 1 on cuda:0"), std::string::npos) << r.result.output;
  EXPECT_NE(r.result.output.find("precision = bf16"), std::string::npos) << r.result.output;
  EXPECT_NE(r.result.output.find("channels-last = 1"), std::string::npos) << r.result.output;
  expect_finite_losses(r, 6);
  ASSERT_EQ(r.metrics.evals.size(), 2u) << r.result.output;
  for (const auto& e : r.metrics.evals) {
    EXPECT_GE(e.at("recall@1"), 0.0);
    EXPECT_LE(e.at("recall@1"), 1.0);
  }
  // float32 weights in the checkpoint, finite, and moved away from the initial ones (seed 123).
  const ModelState state = checkpoint_state(r.prefix + "-last.pt", "resnet18_v1", 16, /*small_input_stem=*/true);
  ModelOptions options;
  options.name = "resnet18_v1";
  options.embed_dim = 16;
  options.small_input_stem = true;
  EmbeddingNet fresh = make_embedding_net(options, /*seed=*/123);
  double moved = 0;
  for (const auto& p : fresh->named_parameters()) {
    const torch::Tensor& trained = state.parameters.at(p.key());
    EXPECT_EQ(trained.scalar_type(), torch::kFloat32) << p.key();
    EXPECT_TRUE(torch::isfinite(trained).all().item<bool>()) << p.key();
    moved = std::max(moved, (trained - p.value().detach()).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-4);
}

TEST_F(GpuTraining, Fp16WithLossScalingTrainsOnOneGpu) {
  const TrainRun r = train("fp16", "small_convnet", /*ranks=*/0, 24, "0", {"--precision", "fp16"});
  EXPECT_NE(r.result.output.find("precision = fp16"), std::string::npos) << r.result.output;
  EXPECT_NE(r.result.output.find("on cuda:0"), std::string::npos) << r.result.output;
  expect_finite_losses(r, 6);
}

TEST_F(GpuTraining, Fp32OnTheGpuTracksTheSameRunOnTheCpu) {
  const TrainRun cpu = train("cpu_fp32", "small_convnet_nobn", /*ranks=*/0, 24, "cpu");
  const TrainRun gpu = train("gpu_fp32", "small_convnet_nobn", /*ranks=*/0, 24, "0");
  EXPECT_NE(gpu.result.output.find("on cuda:0"), std::string::npos) << gpu.result.output;
  // Batches and drawn negatives come from dml's counter-based RNG, the same on both devices.
  expect_same_training(cpu, gpu, "small_convnet_nobn", "GPU fp32 vs CPU fp32", /*loss_rtol=*/1e-3,
                       /*param_atol=*/1e-4, /*eval_atol=*/0.02);
}

TEST_F(GpuTraining, WorldSizeInvarianceOneGpuTwoBEqualsTwoRanksB) {
  DML_SKIP_UNLESS_GPUS(2);
  const TrainRun one = train("inv_one", "small_convnet_nobn", /*ranks=*/0, 24, "0");
  const TrainRun two_ranks = train("inv_two_ranks", "small_convnet_nobn", /*ranks=*/2, 12, "");
  const TrainRun two_gpus = train("inv_two_gpus", "small_convnet_nobn", /*ranks=*/0, 12, "0,1");
  EXPECT_NE(two_ranks.result.output.find("ranks 2 (nccl), replicas per rank 1 on cuda:0"), std::string::npos)
      << two_ranks.result.output;
  expect_same_training(one, two_ranks, "small_convnet_nobn", "1 GPU x 24 vs 2 ranks x 12", /*loss_rtol=*/1e-4,
                       /*param_atol=*/1e-4, /*eval_atol=*/1e-3);
  expect_same_training(one, two_gpus, "small_convnet_nobn", "1 GPU x 24 vs 1 rank x 2 GPUs x 12", 1e-4, 1e-4, 1e-3);
}

TEST_F(GpuTraining, WorldSizeInvarianceWithFrozenBatchNorm) {
  DML_SKIP_UNLESS_GPUS(2);
  const TrainRun one = train("bn_one", "small_convnet", /*ranks=*/0, 24, "0", {"--freeze-bn"});
  const TrainRun two = train("bn_two", "small_convnet", /*ranks=*/2, 12, "", {"--freeze-bn"});
  expect_same_training(one, two, "small_convnet", "frozen BN, 1 GPU x 24 vs 2 ranks x 12", 1e-4, 1e-4, 1e-3);
}

}  // namespace
}  // namespace dml::test
