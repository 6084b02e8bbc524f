#include "model/resnet_blocks_v1.h"

#include "model/conv_forward.h"
#include "model/resnet_layers.h"

namespace dml::detail {

namespace {

// torchvision's downsample: a Sequential, hence the names downsample.0 (conv) and .1 (BN).
torch::nn::Sequential projection(int64_t in_channels, int64_t out_channels, int64_t stride) {
  return torch::nn::Sequential(
      conv2d_no_bias(in_channels, out_channels, /*kernel=*/1, stride, /*padding=*/0), batch_norm(out_channels));
}

torch::Tensor add_shortcut_relu(const torch::Tensor& out, const torch::Tensor& x, torch::nn::Sequential& downsample) {
  return torch::relu(out + (downsample ? downsample->forward(x) : x));
}

}  // namespace

BasicBlockV1Impl::BasicBlockV1Impl(int64_t in_channels, int64_t out_channels, int64_t stride) {
  conv1 = register_module("conv1", conv2d_no_bias(in_channels, out_channels, /*kernel=*/3, stride, /*padding=*/1));
  bn1 = register_module("bn1", batch_norm(out_channels));
  conv2 = register_module("conv2",
                          conv2d_no_bias(out_channels, out_channels, /*kernel=*/3, /*stride=*/1, /*padding=*/1));
  bn2 = register_module("bn2", batch_norm(out_channels));
  if (needs_projection(in_channels, out_channels, stride)) {
    downsample = register_module("downsample", projection(in_channels, out_channels, stride));
  }
}

torch::Tensor BasicBlockV1Impl::forward(torch::Tensor x) {
  torch::Tensor out = torch::relu(bn1(conv_forward(conv1, x)));
  out = bn2(conv_forward(conv2, out));
  return add_shortcut_relu(out, x, downsample);
}

BottleneckV1Impl::BottleneckV1Impl(int64_t in_channels, int64_t out_channels, int64_t stride) {
  const int64_t width = out_channels / kBottleneckExpansion;
  conv1 = register_module("conv1", conv2d_no_bias(in_channels, width, /*kernel=*/1, /*stride=*/1, /*padding=*/0));
  bn1 = register_module("bn1", batch_norm(width));
  conv2 = register_module("conv2", conv2d_no_bias(width, width, /*kernel=*/3, stride, /*padding=*/1));
  bn2 = register_module("bn2", batch_norm(width));
  conv3 = register_module("conv3", conv2d_no_bias(width, out_channels, /*kernel=*/1, /*stride=*/1, /*padding=*/0));
  bn3 = register_module("bn3", batch_norm(out_channels));
  if (needs_projection(in_channels, out_channels, stride)) {
    downsample = register_module("downsample", projection(in_channels, out_channels, stride));
  }
}

torch::Tensor BottleneckV1Impl::forward(torch::Tensor x) {
  torch::Tensor out = torch::relu(bn1(conv_forward(conv1, x)));
  out = torch::relu(bn2(conv_forward(conv2, out)));
  out = bn3(conv_forward(conv3, out));
  return add_shortcut_relu(out, x, downsample);
}

}  // namespace dml::detail
