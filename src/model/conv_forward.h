#pragma once
// How the ResNets run a convolution (private to src/model): conv(x), except for one case where the
// CPU's bf16 library kernel is slow.
//
// oneDNN's bf16 weight-gradient kernel (LibTorch 1.13's, on AVX512-BF16 CPUs) runs at about half
// the speed of its forward kernel when the reduction over batch x output pixels is short next to
// the weight's input size: the 3x3 convs on 4x4 and 7x7 maps of a 28 px ResNet, or on 7x7 and
// 14x14 maps of a 224 px one at a small batch. There the weight gradient is computed instead as one
// bf16 GEMM over an im2col copy of the input (1.5-2x faster for those shapes, measured; slower for
// large maps, and not faster at fp32, where the library kernel is at peak). The forward and the
// input gradient are the library's, unchanged.
#include <torch/torch.h>

#include <cstdint>

namespace dml::detail {

// conv(x), or the same convolution with the GEMM weight gradient when
// uses_gemm_weight_gradient(conv, x). Either way the result and both gradients are those of conv
// under the active autocast (the GEMM's differs from the library's only by summation order).
torch::Tensor conv_forward(torch::nn::Conv2d& conv, const torch::Tensor& x);

// Whether conv_forward takes the GEMM weight gradient for conv on x: a CPU tensor under bf16
// autocast, gradients recorded and wanted for the weight, a plain convolution (groups 1,
// dilation 1, zero padding given as numbers, no bias, kernel larger than 1x1), and
// batch x output pixels < input channels x kernel area. DML_CONV_GEMM_WEIGHT_GRAD=0 in the
// environment turns it off (to compare the two).
bool uses_gemm_weight_gradient(const torch::nn::Conv2d& conv, const torch::Tensor& x);

// The weight gradient of a groups-1, dilation-1, zero-padded 2-D convolution as a GEMM:
// dW[o, c, i, j] = sum over n, y, x of grad_out[n, o, y, x] * input[n, c, y*s + i - p, x*s + j - p].
// grad_out [N, O, OH, OW] and input [N, C, H, W] of one dtype; the result [O, C, KH, KW] has that
// dtype and channels-last strides.
torch::Tensor conv2d_weight_gradient_gemm(const torch::Tensor& grad_out, const torch::Tensor& input,
                                          int64_t kernel_h, int64_t kernel_w, at::IntArrayRef stride,
                                          at::IntArrayRef padding);

}  // namespace dml::detail
