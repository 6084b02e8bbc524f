// Optimiser parameter groups (lr_mult 0.01 on backbone convs when pretrained) and frozen BN.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dml/model/embedding_net.h"
#include "dml/model/param_groups.h"

namespace dml {
namespace {

EmbeddingNet make(const std::string& name, bool small_stem = true, int64_t in_channels = 3) {
  ModelOptions options;
  options.name = name;
  options.small_input_stem = small_stem;
  options.in_channels = in_channels;
  return make_embedding_net(options, /*seed=*/9);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

TEST(ParamGroups, PretrainedResnet18SplitsConvWeights) {
  EmbeddingNet net = make("resnet18_v1");
  const auto groups = parameter_groups(net, /*use_pretrained=*/true);
  ASSERT_EQ(groups.size(), 2u);
  // resnet18: conv1 + 8 blocks x 2 convs + 3 downsample convs = 20 conv weights;
  // 20 BNs x (weight, bias) + head (weight, bias) = 42 others.
  EXPECT_EQ(groups[0].name, "backbone_conv");
  EXPECT_DOUBLE_EQ(groups[0].lr_mult, 0.01);
  ASSERT_EQ(groups[0].params.size(), 20u);
  for (const auto& n : groups[0].param_names) {
    EXPECT_TRUE(ends_with(n, "conv1.weight") || ends_with(n, "conv2.weight") || ends_with(n, "downsample.0.weight"))
        << n;
  }
  EXPECT_DOUBLE_EQ(groups[1].lr_mult, 1.0);
  ASSERT_EQ(groups[1].params.size(), 42u);
  EXPECT_EQ(groups[1].param_names.back(), "head.bias");
  // The groups hold the module's own tensors.
  const auto named = net->named_parameters();
  for (const auto& g : groups) {
    ASSERT_EQ(g.params.size(), g.param_names.size());
    for (size_t i = 0; i < g.params.size(); ++i) {
      EXPECT_TRUE(g.params[i].is_same(named[g.param_names[i]])) << g.param_names[i];
    }
  }
}

TEST(ParamGroups, WithoutPretrainedOneGroupOfEverything) {
  EmbeddingNet net = make("resnet18_v1");
  const auto groups = parameter_groups(net, /*use_pretrained=*/false);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_DOUBLE_EQ(groups[0].lr_mult, 1.0);
  EXPECT_EQ(groups[0].params.size(), 62u);
  EXPECT_EQ(groups[0].params.size(), net->parameters().size());
}

TEST(ParamGroups, Resnet50V2CountsAndFrozenBnExcluded) {
  EmbeddingNet net = make("resnet50_v2", /*small_stem=*/false);
  // convs: conv1 + 16 bottlenecks x 3 + 4 projections = 53; affine BNs: bn1 + 16 x 3 + bn_final
  // = 50 -> 100 tensors, + head 2.
  auto groups = parameter_groups(net, true);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].params.size(), 53u);
  EXPECT_EQ(groups[1].params.size(), 102u);
  net->set_batch_norm_frozen(true);
  groups = parameter_groups(net, true);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].params.size(), 53u);
  EXPECT_EQ(groups[1].param_names, (std::vector<std::string>{"head.weight", "head.bias"}));
}

TEST(FrozenBatchNorm, StaysEvalGetsNoGradAndKeepsStatistics) {
  EmbeddingNet net = make("small_convnet", false, /*in_channels=*/1);
  const torch::Tensor x = torch::randn({6, 1, 28, 28}) * 2 + 0.5;
  net->eval();
  const torch::Tensor eval_output = net->forward(x).detach();

  net->set_batch_norm_frozen(true);
  net->train();
  EXPECT_TRUE(net->is_training());
  EXPECT_TRUE(net->batch_norm_frozen());
  int bn_count = 0;
  for (const auto& m : net->modules()) {
    if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
      ++bn_count;
      EXPECT_FALSE(bn->is_training());
      EXPECT_FALSE(bn->weight.requires_grad());
      EXPECT_FALSE(bn->bias.requires_grad());
    } else if (m->as<torch::nn::Conv2d>() != nullptr) {
      EXPECT_TRUE(m->is_training());
    }
  }
  EXPECT_EQ(bn_count, 3);
  const torch::Tensor y = net->forward(x);
  // Frozen BN uses running statistics: the train-mode output equals the eval-mode output.
  EXPECT_LT((y - eval_output).abs().max().item<float>(), 1e-6);
  y.sum().backward();
  const auto params = net->named_parameters();
  EXPECT_FALSE(params["backbone.bn1.weight"].grad().defined());
  EXPECT_FALSE(params["backbone.bn3.bias"].grad().defined());
  ASSERT_TRUE(params["backbone.conv1.weight"].grad().defined());
  EXPECT_GT(params["backbone.conv1.weight"].grad().abs().sum().item<float>(), 0);
  const auto buffers = net->named_buffers();
  EXPECT_TRUE(torch::all(buffers["backbone.bn1.running_mean"] == 0).item<bool>());

  // Unfreezing restores training BN: gradients flow and statistics update.
  net->set_batch_norm_frozen(false);
  EXPECT_TRUE(net->backbone().named_modules()["bn1"]->is_training());
  EXPECT_TRUE(params["backbone.bn1.weight"].requires_grad());
  net->forward(x).sum().backward();
  EXPECT_TRUE(params["backbone.bn1.weight"].grad().defined());
  EXPECT_GT(buffers["backbone.bn1.running_mean"].abs().sum().item<float>(), 0);
}

TEST(FrozenBatchNorm, EvalThenTrainKeepsFrozenState) {
  EmbeddingNet net = make("resnet18_v2");
  net->set_batch_norm_frozen(true);
  net->eval();
  net->train(true);
  for (const auto& m : net->modules()) {
    if (m->as<torch::nn::BatchNorm2d>() != nullptr) {
      EXPECT_FALSE(m->is_training());
    }
  }
  // The input BN (no affine parameters) is frozen too.
  EXPECT_FALSE(net->backbone().named_modules()["input_bn"]->is_training());
}

}  // namespace
}  // namespace dml
