#include "model/resnet_blocks.h"

namespace dml::detail {

torch::nn::Conv2d conv2d_no_bias(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

torch::nn::BatchNorm2d batch_norm(int64_t channels, bool affine) {
  // eps and momentum as torchvision and as Gluon (MXNet momentum 0.9 == torch momentum 0.1).
  return torch::nn::BatchNorm2d(
      torch::nn::BatchNormOptions(channels).eps(1e-5).momentum(0.1).affine(affine));
}

namespace {
torch::nn::Sequential v1_downsample(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Sequential(conv2d_no_bias(in, out, /*kernel=*/1, stride, /*padding=*/0), batch_norm(out));
}
}  // namespace

BasicBlockV1Impl::BasicBlockV1Impl(int64_t in_channels, int64_t planes, int64_t stride) {
  conv1 = register_module("conv1", conv2d_no_bias(in_channels, planes, 3, stride, 1));
  bn1 = register_module("bn1", batch_norm(planes));
  conv2 = register_module("conv2", conv2d_no_bias(planes, planes, 3, 1, 1));
  bn2 = register_module("bn2", batch_norm(planes));
  if (stride != 1 || in_channels != planes * kExpansion) {
    downsample = register_module("downsample", v1_downsample(in_channels, planes * kExpansion, stride));
  }
}

torch::Tensor BasicBlockV1Impl::forward(torch::Tensor x) {
  torch::Tensor out = torch::relu(bn1(conv1(x)));
  out = bn2(conv2(out));
  const torch::Tensor identity = downsample ? downsample->forward(x) : x;
  return torch::relu(out + identity);
}

BottleneckV1Impl::BottleneckV1Impl(int64_t in_channels, int64_t planes, int64_t stride) {
  conv1 = register_module("conv1", conv2d_no_bias(in_channels, planes, 1, 1, 0));
  bn1 = register_module("bn1", batch_norm(planes));
  conv2 = register_module("conv2", conv2d_no_bias(planes, planes, 3, stride, 1));
  bn2 = register_module("bn2", batch_norm(planes));
  conv3 = register_module("conv3", conv2d_no_bias(planes, planes * kExpansion, 1, 1, 0));
  bn3 = register_module("bn3", batch_norm(planes * kExpansion));
  if (stride != 1 || in_channels != planes * kExpansion) {
    downsample = register_module("downsample", v1_downsample(in_channels, planes * kExpansion, stride));
  }
}

torch::Tensor BottleneckV1Impl::forward(torch::Tensor x) {
  torch::Tensor out = torch::relu(bn1(conv1(x)));
  out = torch::relu(bn2(conv2(out)));
  out = bn3(conv3(out));
  const torch::Tensor identity = downsample ? downsample->forward(x) : x;
  return torch::relu(out + identity);
}

BasicBlockV2Impl::BasicBlockV2Impl(int64_t in_channels, int64_t out_channels, int64_t stride) {
  bn1 = register_module("bn1", batch_norm(in_channels));
  conv1 = register_module("conv1", conv2d_no_bias(in_channels, out_channels, 3, stride, 1));
  bn2 = register_module("bn2", batch_norm(out_channels));
  conv2 = register_module("conv2", conv2d_no_bias(out_channels, out_channels, 3, 1, 1));
  // Gluon adds the projection only when the channel count changes (stride alone never differs
  // from it in the standard specs: every stride-2 stage also changes channels).
  if (in_channels != out_channels || stride != 1) {
    downsample = register_module("downsample", conv2d_no_bias(in_channels, out_channels, 1, stride, 0));
  }
}

torch::Tensor BasicBlockV2Impl::forward(torch::Tensor x) {
  const torch::Tensor pre = torch::relu(bn1(x));
  const torch::Tensor residual = downsample ? downsample(pre) : x;
  torch::Tensor out = conv1(pre);
  out = conv2(torch::relu(bn2(out)));
  return out + residual;
}

BottleneckV2Impl::BottleneckV2Impl(int64_t in_channels, int64_t out_channels, int64_t stride) {
  const int64_t width = out_channels / 4;
  bn1 = register_module("bn1", batch_norm(in_channels));
  conv1 = register_module("conv1", conv2d_no_bias(in_channels, width, 1, 1, 0));
  bn2 = register_module("bn2", batch_norm(width));
  conv2 = register_module("conv2", conv2d_no_bias(width, width, 3, stride, 1));
  bn3 = register_module("bn3", batch_norm(width));
  conv3 = register_module("conv3", conv2d_no_bias(width, out_channels, 1, 1, 0));
  if (in_channels != out_channels || stride != 1) {
    downsample = register_module("downsample", conv2d_no_bias(in_channels, out_channels, 1, stride, 0));
  }
}

torch::Tensor BottleneckV2Impl::forward(torch::Tensor x) {
  const torch::Tensor pre = torch::relu(bn1(x));
  const torch::Tensor residual = downsample ? downsample(pre) : x;
  torch::Tensor out = conv1(pre);
  out = conv2(torch::relu(bn2(out)));
  out = conv3(torch::relu(bn3(out)));
  return out + residual;
}

}  // namespace dml::detail
