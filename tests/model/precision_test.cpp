// --precision and --channels-last: autocast runs the convolutions in bf16 while the embeddings,
// weights and gradients stay float32, and channels-last changes the layout, not the values.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include "dml/model/embedding_net.h"
#include "dml/model/precision.h"
#include "dml/util/error.h"

namespace dml {
namespace {

EmbeddingNet small_resnet18(Precision precision, bool channels_last) {
  ModelOptions options;
  options.name = "resnet18_v1";
  options.small_input_stem = true;
  options.embed_dim = 32;
  options.precision = precision;
  options.channels_last = channels_last;
  return make_embedding_net(options, /*seed=*/7);
}

torch::Tensor images() {
  torch::manual_seed(3);
  return torch::randn({6, 3, 28, 28});
}

TEST(Precision, NamesParseAndUnknownOnesAreRefused) {
  EXPECT_EQ(parse_precision("fp32"), Precision::kFp32);
  EXPECT_EQ(parse_precision("bf16"), Precision::kBf16);
  EXPECT_EQ(parse_precision("fp16"), Precision::kFp16);
  for (Precision p : {Precision::kFp32, Precision::kBf16, Precision::kFp16}) EXPECT_EQ(parse_precision(precision_name(p)), p);
  try {
    parse_precision("fp8");
    ADD_FAILURE() << "fp8 accepted";
  } catch (const OptionError& e) {
    EXPECT_EQ(e.field(), "precision");
    EXPECT_NE(std::string(e.what()).find("use fp32, bf16 or fp16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_precision_supported(Precision::kFp16, torch::kCPU), OptionError);
  EXPECT_NO_THROW(check_precision_supported(Precision::kBf16, torch::kCPU));
}

TEST(Precision, AutocastScopeCastsConvolutionsToBf16AndRestoresTheState) {
  const torch::Tensor x = torch::randn({2, 3, 8, 8}), w = torch::randn({4, 3, 3, 3});
  ASSERT_FALSE(at::autocast::is_cpu_enabled());
  {
    AutocastScope scope(Precision::kBf16, torch::kCPU);
    const torch::Tensor y = torch::conv2d(x, w);
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
    // The same as casting both operands by hand (an independent computation of the same thing).
    const torch::Tensor by_hand = [&] {
      at::autocast::set_cpu_enabled(false);
      torch::Tensor r = torch::conv2d(x.to(torch::kBFloat16), w.to(torch::kBFloat16));
      at::autocast::set_cpu_enabled(true);
      return r;
    }();
    EXPECT_TRUE(torch::equal(y, by_hand));
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kFloat32);
  {
    AutocastScope scope(Precision::kFp32, torch::kCPU);
    EXPECT_FALSE(at::autocast::is_cpu_enabled());
  }
}

TEST(Precision, Bf16ForwardKeepsFloat32EmbeddingsWeightsAndGradients) {
  EmbeddingNet fp32 = small_resnet18(Precision::kFp32, false), bf16 = small_resnet18(Precision::kBf16, false);
  const torch::Tensor x = images();
  const torch::Tensor a = fp32->forward(x), b = bf16->forward(x);
  EXPECT_EQ(b.scalar_type(), torch::kFloat32);
  EXPECT_FALSE(torch::equal(a, b)) << "bf16 must actually change the arithmetic";
  // Unit-norm embeddings: bf16's 8-bit mantissa keeps them within a few hundredths.
  EXPECT_LT((a - b).abs().max().item<double>(), 0.05);
  EXPECT_NEAR(b.norm(2, 1).mean().item<double>(), 1.0, 1e-5);
  b.sum().backward();
  for (const auto& p : bf16->named_parameters()) {
    EXPECT_EQ(p.value().scalar_type(), torch::kFloat32) << p.key();
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_EQ(p.value().grad().scalar_type(), torch::kFloat32) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
}

TEST(Precision, ChannelsLastChangesTheLayoutNotTheValues) {
  EmbeddingNet plain = small_resnet18(Precision::kFp32, false), nhwc = small_resnet18(Precision::kFp32, true);
  int64_t four_d = 0;
  const auto plain_params = plain->named_parameters();
  for (const auto& p : nhwc->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), plain_params[p.key()])) << p.key();
    if (p.value().dim() != 4) continue;
    ++four_d;
    EXPECT_TRUE(p.value().is_contiguous(torch::MemoryFormat::ChannelsLast)) << p.key();
  }
  EXPECT_GT(four_d, 10);
  const torch::Tensor x = images();
  const torch::Tensor a = plain->forward(x), b = nhwc->forward(x);
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
  a.pow(2).sum().backward();
  b.pow(2).sum().backward();
  for (const auto& p : nhwc->named_parameters()) {
    const torch::Tensor g = p.value().grad(), ref = plain_params[p.key()].grad();
    ASSERT_TRUE(g.defined()) << p.key();
    EXPECT_LT((g - ref).abs().max().item<double>(), 1e-4 * (1 + ref.abs().max().item<double>())) << p.key();
  }
}

}  // namespace
}  // namespace dml
