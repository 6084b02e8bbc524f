#include "model/resnet_blocks_v2.h"

#include "model/conv_forward.h"
#include "model/resnet_layers.h"

namespace dml::detail {

namespace {

// Gluon's downsample is a bare 1x1 conv; it reads the pre-activated input, not x.
torch::nn::Conv2d projection(int64_t in_channels, int64_t out_channels, int64_t stride) {
  return conv2d_no_bias(in_channels, out_channels, /*kernel=*/1, stride, /*padding=*/0);
}

}  // namespace

BasicBlockV2Impl::BasicBlockV2Impl(int64_t in_channels, int64_t out_channels, int64_t stride) {
  bn1 = register_module("bn1", batch_norm(in_channels));
  conv1 = register_module("conv1", conv2d_no_bias(in_channels, out_channels, /*kernel=*/3, stride, /*padding=*/1));
  bn2 = register_module("bn2", batch_norm(out_channels));
  conv2 = register_module("conv2",
                          conv2d_no_bias(out_channels, out_channels, /*kernel=*/3, /*stride=*/1, /*padding=*/1));
  if (needs_projection(in_channels, out_channels, stride)) {
    downsample = register_module("downsample", projection(in_channels, out_channels, stride));
  }
}

torch::Tensor BasicBlockV2Impl::forward(torch::Tensor x) {
  const torch::Tensor pre = torch::relu(bn1(x));
  const torch::Tensor shortcut = downsample ? downsample(pre) : x;
  torch::Tensor out = conv_forward(conv1, pre);
  out = conv_forward(conv2, torch::relu(bn2(out)));
  return out + shortcut;
}

BottleneckV2Impl::BottleneckV2Impl(int64_t in_channels, int64_t out_channels, int64_t stride) {
  const int64_t width = out_channels / kBottleneckExpansion;
  bn1 = register_module("bn1", batch_norm(in_channels));
  conv1 = register_module("conv1", conv2d_no_bias(in_channels, width, /*kernel=*/1, /*stride=*/1, /*padding=*/0));
  bn2 = register_module("bn2", batch_norm(width));
  conv2 = register_module("conv2", conv2d_no_bias(width, width, /*kernel=*/3, stride, /*padding=*/1));
  bn3 = register_module("bn3", batch_norm(width));
  conv3 = register_module("conv3", conv2d_no_bias(width, out_channels, /*kernel=*/1, /*stride=*/1, /*padding=*/0));
  if (needs_projection(in_channels, out_channels, stride)) {
    downsample = register_module("downsample", projection(in_channels, out_channels, stride));
  }
}

torch::Tensor BottleneckV2Impl::forward(torch::Tensor x) {
  const torch::Tensor pre = torch::relu(bn1(x));
  const torch::Tensor shortcut = downsample ? downsample(pre) : x;
  torch::Tensor out = conv_forward(conv1, pre);
  out = conv_forward(conv2, torch::relu(bn2(out)));
  out = conv_forward(conv3, torch::relu(bn3(out)));
  return out + shortcut;
}

}  // namespace dml::detail
