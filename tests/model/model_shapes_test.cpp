// Output shapes of every backbone through the embedding net, the head and normalisation
// formula, the factory's errors and the float32 head under autocast.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "dml/model/embedding_net.h"
#include "dml/model/model_factory.h"
#include "dml/util/error.h"

namespace dml {
namespace {

// Pooled feature width by name, from the architectures (torchvision / Gluon tables).
int64_t expected_feature_dim(const std::string& name) {
  static const std::map<std::string, int64_t> dims = {
      {"resnet18_v1", 512},   {"resnet34_v1", 512},   {"resnet50_v1", 2048}, {"resnet101_v1", 2048},
      {"resnet152_v1", 2048}, {"resnet18_v2", 512},   {"resnet34_v2", 512},  {"resnet50_v2", 2048},
      {"resnet101_v2", 2048}, {"resnet152_v2", 2048}, {"small_convnet", 128}, {"small_convnet_nobn", 128}};
  return dims.at(name);
}

TEST(ModelFactory, ListsTwelveNames) {
  const auto names = model_names();
  EXPECT_EQ(names.size(), 12u);
  for (const auto& n : names) EXPECT_NO_THROW(expected_feature_dim(n)) << n;
}

void check_shapes(const std::string& name, int64_t size_px, bool small_stem, int64_t batch) {
  ModelOptions options;
  options.name = name;
  options.embed_dim = 64;
  options.small_input_stem = small_stem;
  EmbeddingNet net = make_embedding_net(options, /*seed=*/3);
  net->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({batch, 3, size_px, size_px});
  const torch::Tensor f = net->features(x);
  const torch::Tensor y = net->forward(x);
  EXPECT_EQ(net->feature_dim(), expected_feature_dim(name)) << name;
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{batch, expected_feature_dim(name)})) << name;
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{batch, 64})) << name;
  EXPECT_EQ(y.scalar_type(), torch::kFloat32) << name;
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>()) << name;
}

TEST(ModelShapes, EveryModelAt224Pixels) {
  for (const auto& name : model_names()) check_shapes(name, /*size_px=*/224, /*small_stem=*/false, /*batch=*/1);
}

TEST(ModelShapes, EveryModelAt32PixelsWithSmallStem) {
  for (const auto& name : model_names()) check_shapes(name, /*size_px=*/32, /*small_stem=*/true, /*batch=*/2);
}

TEST(ModelShapes, SmallConvnetOnOneChannel28Pixels) {
  for (const std::string name : {"small_convnet", "small_convnet_nobn"}) {
    ModelOptions options;
    options.name = name;
    options.in_channels = 1;
    EmbeddingNet net = make_embedding_net(options, /*seed=*/1);
    const torch::Tensor y = net->forward(torch::randn({5, 1, 28, 28}));
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{5, 128}));
    // A 3-channel input is rejected with the expected shape in the message.
    try {
      net->forward(torch::randn({2, 3, 28, 28}));
      ADD_FAILURE() << "expected an error for 3 input channels";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("[B, 1, H, W]"), std::string::npos) << e.what();
    }
  }
}

TEST(ModelShapes, SmallConvnetHasAboutHundredThousandParameters) {
  // conv 3->32, 32->64, 64->128 (3x3, no bias) + 3 BN (gamma, beta): counted by hand.
  const int64_t expected = 3 * 32 * 9 + 32 * 64 * 9 + 64 * 128 * 9 + 2 * (32 + 64 + 128);
  auto backbone = make_backbone("small_convnet", 3, false);
  int64_t count = 0;
  for (const auto& p : backbone->parameters()) count += p.numel();
  EXPECT_EQ(count, expected);
  // Without BN the convs carry biases instead.
  auto nobn = make_backbone("small_convnet_nobn", 3, false);
  count = 0;
  for (const auto& p : nobn->parameters()) count += p.numel();
  EXPECT_EQ(count, 3 * 32 * 9 + 32 * 64 * 9 + 64 * 128 * 9 + 32 + 64 + 128);
  for (const auto& m : nobn->modules()) EXPECT_EQ(m->as<torch::nn::BatchNorm2d>(), nullptr);
}

TEST(EmbeddingNet, OutputIsUnitNormHeadOfPooledFeaturesWithZeroBias) {
  ModelOptions options;
  options.name = "small_convnet";
  options.embed_dim = 16;
  EmbeddingNet net = make_embedding_net(options, /*seed=*/11);
  net->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({4, 3, 32, 32});
  const torch::Tensor y = net->forward(x).to(torch::kFloat64);
  EXPECT_TRUE(torch::all(net->head()->bias == 0).item<bool>());
  const torch::Tensor norms = y.pow(2).sum(1).sqrt();
  EXPECT_LT((norms - 1.0).abs().max().item<double>(), 1e-6);
  // Independent recomputation in float64: mean over the feature map, x W^T + b, normalise.
  const torch::Tensor pooled = net->backbone().forward(x).to(torch::kFloat64).mean({2, 3});
  const torch::Tensor z = torch::matmul(pooled, net->head()->weight.to(torch::kFloat64).t()) +
                          net->head()->bias.to(torch::kFloat64);
  const torch::Tensor expected = z / torch::sqrt(z.pow(2).sum(1, true) + 1e-10);
  EXPECT_LT((y - expected).abs().max().item<double>(), 1e-5);
}

TEST(EmbeddingNet, HeadRunsInFloat32UnderCpuAutocast) {
  ModelOptions options;
  options.name = "small_convnet";
  EmbeddingNet net = make_embedding_net(options, /*seed=*/2);
  net->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({3, 3, 32, 32});
  const torch::Tensor reference = net->forward(x);
  const auto previous_dtype = at::autocast::get_autocast_cpu_dtype();
  at::autocast::set_autocast_cpu_dtype(torch::kBFloat16);
  at::autocast::set_cpu_enabled(true);
  const torch::Tensor map = net->backbone().forward(x);
  const torch::Tensor y = net->forward(x);
  at::autocast::set_cpu_enabled(false);
  at::autocast::clear_cache();
  at::autocast::set_autocast_cpu_dtype(previous_dtype);
  EXPECT_EQ(map.scalar_type(), torch::kBFloat16);  // the backbone did run in bf16
  EXPECT_EQ(y.scalar_type(), torch::kFloat32);
  EXPECT_LT((y.pow(2).sum(1) - 1).abs().max().item<float>(), 1e-5);
  EXPECT_LT((y - reference).abs().max().item<float>(), 0.1);  // bf16 backbone, same function
}

TEST(ModelFactory, UnknownNameErrorListsValidNames) {
  ModelOptions options;
  options.name = "resnet51_v3";
  try {
    make_embedding_net(options, 0);
    ADD_FAILURE() << "expected dml::Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("resnet51_v3"), std::string::npos) << message;
    for (const auto& n : model_names()) EXPECT_NE(message.find(n), std::string::npos) << n << ": " << message;
  }
}

}  // namespace
}  // namespace dml
