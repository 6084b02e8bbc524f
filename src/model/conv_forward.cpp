#include "model/conv_forward.h"

#include <ATen/autocast_mode.h>

#include <cstdlib>
#include <cstring>
#include <variant>
#include <vector>

namespace dml::detail {

namespace {

bool gemm_weight_gradient_enabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("DML_CONV_GEMM_WEIGHT_GRAD");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return enabled;
}

std::vector<int64_t> pair(const torch::ExpandingArray<2>& a) { return {(*a)[0], (*a)[1]}; }

// The convolution in bf16 (inputs cast as autocast casts them); backward: the library's input
// gradient, the GEMM's weight gradient, each returned in its input's dtype.
struct Bf16ConvGemmWeightGrad : public torch::autograd::Function<Bf16ConvGemmWeightGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, std::vector<int64_t> stride,
                               std::vector<int64_t> padding) {
    const torch::Tensor xb = x.to(torch::kBFloat16);
    const torch::Tensor wb = weight.to(torch::kBFloat16);
    ctx->save_for_backward({xb, wb});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["w_dtype"] = static_cast<int64_t>(weight.scalar_type());
    return at::conv2d(xb, wb, /*bias=*/{}, stride, padding);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& xb = saved[0];
    const torch::Tensor& wb = saved[1];
    const std::vector<int64_t> stride = ctx->saved_data["stride"].toIntVector();
    const std::vector<int64_t> padding = ctx->saved_data["padding"].toIntVector();
    const torch::Tensor g = grads[0].to(torch::kBFloat16);
    torch::Tensor grad_x;
    torch::Tensor grad_w;
    if (ctx->needs_input_grad(0)) {
      grad_x = std::get<0>(at::convolution_backward(g, xb, wb, /*bias_sizes=*/c10::nullopt, stride, padding,
                                                    /*dilation=*/{1, 1}, /*transposed=*/false,
                                                    /*output_padding=*/{0, 0}, /*groups=*/1, {true, false, false}));
      grad_x = grad_x.to(static_cast<at::ScalarType>(ctx->saved_data["x_dtype"].toInt()));
    }
    if (ctx->needs_input_grad(1)) {
      grad_w = conv2d_weight_gradient_gemm(g, xb, wb.size(2), wb.size(3), stride, padding)
                   .to(static_cast<at::ScalarType>(ctx->saved_data["w_dtype"].toInt()));
    }
    return {grad_x, grad_w, torch::Tensor(), torch::Tensor()};
  }
};

// LibTorch 1.13's options hold a c10::variant, LibTorch 2.x's a std::variant. With std::get_if in
// scope the call is a template call, and argument-dependent lookup adds c10::get_if for the former.
template <class T, class Variant>
const T* variant_get_if(const Variant& v) {
  using std::get_if;
  return get_if<T>(&v);
}

}  // namespace

bool uses_gemm_weight_gradient(const torch::nn::Conv2d& conv, const torch::Tensor& x) {
  if (!gemm_weight_gradient_enabled() || !x.defined() || x.dim() != 4 || !x.device().is_cpu()) return false;
  if (!at::autocast::is_cpu_enabled() || at::autocast::get_autocast_cpu_dtype() != at::kBFloat16) return false;
  if (!torch::GradMode::is_enabled() || !conv->weight.requires_grad()) return false;
  const auto& o = conv->options;
  const auto* padding = variant_get_if<torch::ExpandingArray<2>>(o.padding());
  if (padding == nullptr || o.groups() != 1 || o.bias() || (*o.dilation())[0] != 1 || (*o.dilation())[1] != 1 ||
      !variant_get_if<torch::enumtype::kZeros>(o.padding_mode())) {
    return false;
  }
  const int64_t kh = (*o.kernel_size())[0];
  const int64_t kw = (*o.kernel_size())[1];
  if (kh * kw == 1) return false;
  const int64_t oh = (x.size(2) + 2 * (**padding)[0] - kh) / (*o.stride())[0] + 1;
  const int64_t ow = (x.size(3) + 2 * (**padding)[1] - kw) / (*o.stride())[1] + 1;
  return oh > 0 && ow > 0 && x.size(0) * oh * ow < x.size(1) * kh * kw;
}

torch::Tensor conv_forward(torch::nn::Conv2d& conv, const torch::Tensor& x) {
  if (!uses_gemm_weight_gradient(conv, x)) return conv(x);
  const auto& o = conv->options;
  return Bf16ConvGemmWeightGrad::apply(x, conv->weight, pair(o.stride()),
                                       pair(*variant_get_if<torch::ExpandingArray<2>>(o.padding())));
}

torch::Tensor conv2d_weight_gradient_gemm(const torch::Tensor& grad_out, const torch::Tensor& input,
                                          int64_t kernel_h, int64_t kernel_w, at::IntArrayRef stride,
                                          at::IntArrayRef padding) {
  TORCH_CHECK(grad_out.dim() == 4 && input.dim() == 4 && stride.size() == 2 && padding.size() == 2,
              "conv2d_weight_gradient_gemm: 4-D grad_out and input, 2 strides and 2 paddings");
  const int64_t n = input.size(0);
  const int64_t c = input.size(1);
  const int64_t o = grad_out.size(1);
  const int64_t oh = grad_out.size(2);
  const int64_t ow = grad_out.size(3);
  // The input as a zero-padded NHWC tensor; tap (i, j) of every output pixel is then a strided
  // slice, and the taps stacked side by side are the im2col matrix [N*OH*OW, KH*KW*C].
  const torch::Tensor padded =
      at::constant_pad_nd(input.permute({0, 2, 3, 1}), {0, 0, padding[1], padding[1], padding[0], padding[0]});
  std::vector<torch::Tensor> taps;
  taps.reserve(static_cast<size_t>(kernel_h * kernel_w));
  for (int64_t i = 0; i < kernel_h; ++i) {
    for (int64_t j = 0; j < kernel_w; ++j) {
      taps.push_back(padded.slice(1, i, i + stride[0] * (oh - 1) + 1, stride[0])
                         .slice(2, j, j + stride[1] * (ow - 1) + 1, stride[1]));
    }
  }
  const torch::Tensor columns = torch::stack(taps, /*dim=*/3).reshape({n * oh * ow, kernel_h * kernel_w * c});
  const torch::Tensor g = grad_out.permute({0, 2, 3, 1}).reshape({n * oh * ow, o});
  // [O, KH*KW*C] in (i, j, c) order = [O, KH, KW, C] contiguous = [O, C, KH, KW] channels-last.
  return g.t().mm(columns).view({o, kernel_h, kernel_w, c}).permute({0, 3, 1, 2});
}

}  // namespace dml::detail
