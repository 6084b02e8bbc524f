// The ResNets' convolution (src/model/conv_forward.h): under bf16 autocast on the CPU, convs whose
// batch x output pixels are fewer than input channels x kernel area get their weight gradient from
// a GEMM over im2col instead of oneDNN's kernel. Checked against a direct 7-loop sum in double, and
// against the library's own bf16 backward on the same tensors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include <vector>

#include "dml/model/precision.h"
#include "model/conv_forward.h"

namespace dml::detail {
namespace {

// dW[o, c, i, j] = sum_{n, y, x} g[n, o, y, x] * in[n, c, y*s0 + i - p0, x*s1 + j - p1] (zero outside),
// by loops in double.
torch::Tensor direct_weight_gradient(const torch::Tensor& g, const torch::Tensor& in, int64_t kh, int64_t kw,
                                     std::vector<int64_t> s, std::vector<int64_t> p) {
  const auto gd = g.to(torch::kFloat64).contiguous();
  const auto xd = in.to(torch::kFloat64).contiguous();
  const auto ga = gd.accessor<double, 4>();
  const auto xa = xd.accessor<double, 4>();
  const int64_t n = in.size(0), c = in.size(1), h = in.size(2), w = in.size(3);
  const int64_t o = g.size(1), oh = g.size(2), ow = g.size(3);
  auto out = torch::zeros({o, c, kh, kw}, torch::kFloat64);
  auto oa = out.accessor<double, 4>();
  for (int64_t a = 0; a < o; ++a)
    for (int64_t b = 0; b < c; ++b)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          double sum = 0;
          for (int64_t m = 0; m < n; ++m)
            for (int64_t y = 0; y < oh; ++y)
              for (int64_t x = 0; x < ow; ++x) {
                const int64_t r = y * s[0] + i - p[0];
                const int64_t q = x * s[1] + j - p[1];
                if (r >= 0 && r < h && q >= 0 && q < w) sum += ga[m][a][y][x] * xa[m][b][r][q];
              }
          oa[a][b][i][j] = sum;
        }
  return out;
}

struct Case {
  int64_t n, c, h, w, o, kh, kw, s0, s1, p0, p1;
};

TEST(ConvWeightGradientGemm, EqualsTheDirectSumForStridesPaddingsAndKernels) {
  const std::vector<Case> cases = {
      {2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1},  // same-size 3x3
      {3, 2, 7, 7, 5, 3, 3, 2, 2, 1, 1},  // strided, as a ResNet's downsampling 3x3
      {2, 4, 6, 5, 3, 3, 2, 1, 2, 0, 1},  // rectangular kernel, mixed stride and padding
      {1, 3, 9, 9, 2, 7, 7, 2, 2, 3, 3},  // the 7x7/2 stem
  };
  torch::manual_seed(11);
  for (const Case& k : cases) {
    const auto x = torch::randn({k.n, k.c, k.h, k.w}, torch::kFloat64);
    const int64_t oh = (k.h + 2 * k.p0 - k.kh) / k.s0 + 1;
    const int64_t ow = (k.w + 2 * k.p1 - k.kw) / k.s1 + 1;
    const auto g = torch::randn({k.n, k.o, oh, ow}, torch::kFloat64);
    const auto expected = direct_weight_gradient(g, x, k.kh, k.kw, {k.s0, k.s1}, {k.p0, k.p1});
    for (bool channels_last : {false, true}) {
      const auto xi = channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
      const auto gi = channels_last ? g.contiguous(torch::MemoryFormat::ChannelsLast) : g;
      const auto got = conv2d_weight_gradient_gemm(gi, xi, k.kh, k.kw, {k.s0, k.s1}, {k.p0, k.p1});
      ASSERT_EQ(got.sizes(), expected.sizes());
      EXPECT_TRUE(got.is_contiguous(torch::MemoryFormat::ChannelsLast));
      EXPECT_LT((got - expected).abs().max().item<double>(), 1e-12)
          << "kernel " << k.kh << "x" << k.kw << " stride " << k.s0 << "," << k.s1 << " channels_last " << channels_last;
    }
  }
}

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

TEST(ConvForward, TakesTheGemmOnlyForSmallMapsUnderCpuBf16AutocastWithGradients) {
  auto deep = conv3x3(512, 512, 1);    // 4x4 maps: 8 x 16 = 128 rows < 512 x 9
  auto early = conv3x3(16, 16, 1);     // 28x28 maps: 8 x 784 rows > 16 x 9
  auto one_by_one = torch::nn::Conv2d(torch::nn::Conv2dOptions(512, 512, 1).bias(false));
  auto with_bias = torch::nn::Conv2d(torch::nn::Conv2dOptions(512, 512, 3).padding(1));
  auto grouped = torch::nn::Conv2d(torch::nn::Conv2dOptions(512, 512, 3).padding(1).groups(2).bias(false));
  const auto small_map = torch::randn({8, 512, 4, 4});
  EXPECT_FALSE(uses_gemm_weight_gradient(deep, small_map)) << "fp32 (no autocast) must use the library";
  {
    AutocastScope bf16(Precision::kBf16, torch::kCPU);
    EXPECT_TRUE(uses_gemm_weight_gradient(deep, small_map));
    EXPECT_FALSE(uses_gemm_weight_gradient(early, torch::randn({8, 16, 28, 28})));
    EXPECT_FALSE(uses_gemm_weight_gradient(one_by_one, small_map));
    EXPECT_FALSE(uses_gemm_weight_gradient(with_bias, small_map));
    EXPECT_FALSE(uses_gemm_weight_gradient(grouped, small_map));
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(uses_gemm_weight_gradient(deep, small_map)) << "evaluation needs no weight gradient";
  }
}

// The same convolution twice under bf16 autocast, through conv_forward (GEMM weight gradient) and
// through the module (library): same output and input gradient bit for bit, weight gradients
// within bf16 rounding of each other and of the exact gradient of the bf16-rounded operands.
TEST(ConvForward, Bf16GemmPathMatchesTheLibraryBackward) {
  for (bool channels_last : {false, true}) {
    for (int64_t stride : {1, 2}) {
      torch::manual_seed(5);
      auto conv = conv3x3(96, 64, stride);
      auto x = torch::randn({4, 96, 5, 5});
      if (channels_last) {
        conv->weight.set_data(conv->weight.data().contiguous(torch::MemoryFormat::ChannelsLast));
        x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      }
      const auto x_gemm = x.clone().requires_grad_(true);
      const auto x_lib = x.clone().requires_grad_(true);
      torch::Tensor y_gemm;
      torch::Tensor y_lib;
      {
        AutocastScope bf16(Precision::kBf16, torch::kCPU);
        ASSERT_TRUE(uses_gemm_weight_gradient(conv, x_gemm));
        y_gemm = conv_forward(conv, x_gemm);
        y_lib = conv(x_lib);
      }
      ASSERT_EQ(y_gemm.scalar_type(), torch::kBFloat16);
      EXPECT_TRUE(torch::equal(y_gemm, y_lib));
      const auto upstream = torch::randn(y_lib.sizes()).to(torch::kBFloat16);
      const auto gw_gemm = torch::autograd::grad({y_gemm}, {x_gemm, conv->weight}, {upstream});
      const auto gw_lib = torch::autograd::grad({y_lib}, {x_lib, conv->weight}, {upstream});
      EXPECT_EQ(gw_gemm[0].scalar_type(), torch::kFloat32);
      EXPECT_EQ(gw_gemm[1].scalar_type(), torch::kFloat32);
      EXPECT_TRUE(torch::equal(gw_gemm[0], gw_lib[0])) << "input gradients differ";
      const auto exact = direct_weight_gradient(upstream, x.to(torch::kBFloat16), 3, 3, {stride, stride}, {1, 1});
      const double scale = exact.abs().max().item<double>();
      const double gemm_error = (gw_gemm[1].to(torch::kFloat64) - exact).abs().max().item<double>() / scale;
      const double lib_error = (gw_lib[1].to(torch::kFloat64) - exact).abs().max().item<double>() / scale;
      // One bf16 rounding of the result (2^-8 relative) is the expected error of either.
      EXPECT_LT(gemm_error, 8e-3) << "stride " << stride << " channels_last " << channels_last;
      EXPECT_LT(lib_error, 8e-3);
      EXPECT_GT(gemm_error, 0.0) << "no bf16 rounding at all: the GEMM path did not run in bf16";
    }
  }
}

}  // namespace
}  // namespace dml::detail
