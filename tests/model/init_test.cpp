// Reference initialisation: Xavier-uniform magnitude 2 on conv/linear weights, zero biases,
// BN gamma 1 beta 0, deterministic in the seed.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "dml/model/embedding_net.h"
#include "dml/model/init.h"

namespace dml {
namespace {

EmbeddingNet small_resnet18(uint64_t seed) {
  ModelOptions options;
  options.name = "resnet18_v1";
  options.small_input_stem = true;
  return make_embedding_net(options, seed);
}

TEST(Init, BoundFollowsFormulaForConvAndLinear) {
  // Hand-derived: conv [64, 64, 3, 3]: fan_in = fan_out = 576 -> sqrt(2 / 576).
  EXPECT_NEAR(xavier_magnitude2_bound({64, 64, 3, 3}), std::sqrt(2.0 / 576.0), 1e-12);
  // conv [128, 64, 1, 1]: fans 64 and 128 -> sqrt(2 / 96).
  EXPECT_NEAR(xavier_magnitude2_bound({128, 64, 1, 1}), std::sqrt(2.0 / 96.0), 1e-12);
  // linear [128, 512]: sqrt(2 / 320).
  EXPECT_NEAR(xavier_magnitude2_bound({128, 512}), std::sqrt(2.0 / 320.0), 1e-12);
}

TEST(Init, WeightsAreUniformWithinXavierBounds) {
  EmbeddingNet net = small_resnet18(7);
  int checked = 0;
  for (const auto& item : net->named_parameters()) {
    const torch::Tensor w = item.value().to(torch::kFloat64);
    const std::string& name = item.key();
    const bool is_weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
    if (!is_weight || w.dim() < 2) continue;
    // Fans computed here from the shape, independently of init.cpp.
    int64_t receptive = 1;
    for (int64_t d = 2; d < w.dim(); ++d) receptive *= w.size(d);
    const double fan_in = static_cast<double>(w.size(1) * receptive);
    const double fan_out = static_cast<double>(w.size(0) * receptive);
    const double s = std::sqrt(2.0 / ((fan_in + fan_out) / 2.0));
    const double max_abs = w.abs().max().item<double>();
    EXPECT_LE(max_abs, s * (1 + 1e-6)) << name;
    if (w.numel() >= 4096) {
      EXPECT_GT(max_abs, 0.98 * s) << name;
      // U(-s, s): mean 0, variance s^2 / 3. Relative sampling error of the variance ~ 1/sqrt(n).
      const double variance = w.pow(2).mean().item<double>();
      EXPECT_NEAR(variance / (s * s / 3.0), 1.0, 6.0 / std::sqrt(static_cast<double>(w.numel()))) << name;
      EXPECT_NEAR(w.mean().item<double>() / s, 0.0, 6.0 / std::sqrt(3.0 * w.numel())) << name;
      ++checked;
    }
  }
  EXPECT_GE(checked, 15);  // the 3x3 convs from layer1 on and the head
  const double head_s = std::sqrt(2.0 / ((512.0 + 128.0) / 2.0));
  EXPECT_LE(net->head()->weight.abs().max().item<double>(), head_s);
  EXPECT_GT(net->head()->weight.abs().max().item<double>(), 0.98 * head_s);
}

TEST(Init, BiasesZeroAndBatchNormIdentity) {
  EmbeddingNet net = small_resnet18(7);
  EXPECT_TRUE(torch::all(net->head()->bias == 0).item<bool>());
  int bn_count = 0;
  for (const auto& m : net->modules()) {
    if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
      ++bn_count;
      EXPECT_TRUE(torch::all(bn->weight == 1).item<bool>());
      EXPECT_TRUE(torch::all(bn->bias == 0).item<bool>());
      EXPECT_TRUE(torch::all(bn->running_mean == 0).item<bool>());
      EXPECT_TRUE(torch::all(bn->running_var == 1).item<bool>());
    }
  }
  EXPECT_EQ(bn_count, 20);  // bn1 + 8 blocks x 2 + 3 downsample BNs
  ModelOptions nobn;
  nobn.name = "small_convnet_nobn";
  EmbeddingNet plain = make_embedding_net(nobn, 7);
  for (const auto& item : plain->named_parameters()) {
    if (item.key().find("bias") != std::string::npos) {
      EXPECT_TRUE(torch::all(item.value() == 0).item<bool>()) << item.key();
    }
  }
}

TEST(Init, SameSeedSameWeightsOtherSeedOtherWeights) {
  EmbeddingNet a = small_resnet18(7), b = small_resnet18(7), c = small_resnet18(8);
  const auto pa = a->named_parameters(), pb = b->named_parameters(), pc = c->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i].value(), pb[i].value())) << pa[i].key();
    if (pa[i].value().dim() >= 2) {
      EXPECT_FALSE(torch::equal(pa[i].value(), pc[i].value())) << pa[i].key();
    }
  }
  // Different tensors of the same shape get different draws.
  EXPECT_FALSE(torch::equal(a->named_parameters()["backbone.layer1.0.conv1.weight"],
                            a->named_parameters()["backbone.layer1.0.conv2.weight"]));
}

}  // namespace
}  // namespace dml
