// The pre-activation ResNet v2 (Gluon ResNetV2): parameter count from the architecture table,
// the affine-free input BN, and the forward pass against an independent PyTorch implementation
// written from Gluon's block definitions (tests/model/python/resnet_v2_model.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "dml/model/embedding_net.h"
#include "dml/model/model_factory.h"
#include "python_reference.h"
#include "test_support.h"

namespace dml {
namespace {

int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// The count from Gluon's architecture table alone (tests/model/python/resnet_v2_parameter_count.py),
// independent of the PyTorch reference that resnet_parameters_test.cpp compares names against.
TEST(ResNetV2, ParameterCountsMatchArchitectureTable) {
  for (int depth : {18, 34, 50, 101, 152}) {
    for (bool small : {false, true}) {
      std::vector<std::string> args = {std::to_string(depth)};
      if (small) args.push_back("--small-input-stem");
      const auto r = test::run_reference_script("resnet_v2_parameter_count.py", args);
      ASSERT_EQ(r.exit_code, 0) << r.output;
      auto backbone = make_backbone("resnet" + std::to_string(depth) + "_v2", /*in_channels=*/3, small);
      EXPECT_EQ(parameter_count(*backbone), std::stoll(r.output)) << "depth " << depth << (small ? " small stem" : "");
    }
  }
}

TEST(ResNetV2, InputBatchNormHasNoAffineParameters) {
  auto backbone = make_backbone("resnet50_v2", 3, false);
  const auto params = backbone->named_parameters();
  EXPECT_EQ(params.find("input_bn.weight"), nullptr);
  EXPECT_EQ(params.find("input_bn.bias"), nullptr);
  const auto buffers = backbone->named_buffers();
  ASSERT_NE(buffers.find("input_bn.running_mean"), nullptr);
  EXPECT_EQ(buffers["input_bn.running_mean"].sizes(), (std::vector<int64_t>{3}));
  // Convs have no bias anywhere; the first conv is 7x7/2 with 64 channels.
  for (const auto& item : params) EXPECT_EQ(item.key().find("conv") != std::string::npos &&
                                                item.key().find(".bias") != std::string::npos,
                                            false) << item.key();
  EXPECT_EQ(params["conv1.weight"].sizes(), (std::vector<int64_t>{64, 3, 7, 7}));
  // Input BN normalises with batch statistics in training: a constant shift of the input does
  // not change the output of the train-mode net.
  ModelOptions options;
  options.name = "resnet18_v2";
  options.small_input_stem = true;
  EmbeddingNet net = make_embedding_net(options, 4);
  net->train();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({4, 3, 16, 16});
  EXPECT_LT((net->forward(x) - net->forward(x + 3.0)).abs().max().item<float>(), 2e-4);
}

// tests/model/python/resnet_v2_reference.py writes random weights (perturbed BN statistics), an
// input and the pooled eval-mode features of the independent PyTorch ResNetV2 for each case.
TEST(ResNetV2, ForwardMatchesIndependentGluonStyleImplementation) {
  test::TempDir dir;
  const std::vector<std::string> cases = {"18_full", "50_full", "50_small"};
  std::vector<std::string> args = {dir.path()};
  args.insert(args.end(), cases.begin(), cases.end());
  const auto r = test::run_reference_script("resnet_v2_reference.py", args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& c : cases) {
    ModelOptions options;
    options.name = "resnet" + c.substr(0, c.find('_')) + "_v2";
    options.small_input_stem = c.find("small") != std::string::npos;
    options.use_pretrained = true;
    options.pretrained_path = dir.file(c + ".pt");
    EmbeddingNet net = make_embedding_net(options, 0);
    net->eval();
    const auto io = test::load_tensor_dict(dir.file(c + "_io.pt"));
    torch::NoGradGuard no_grad;
    const torch::Tensor f = net->features(io.at("input"));
    const torch::Tensor expected = io.at("features");
    ASSERT_EQ(f.sizes(), expected.sizes()) << c;
    const double scale = expected.abs().max().item<double>();
    EXPECT_GT(scale, 0.05) << c;
    EXPECT_LT((f - expected).abs().max().item<double>(), 1e-5 * std::max(1.0, scale)) << c;
  }
}

}  // namespace
}  // namespace dml
