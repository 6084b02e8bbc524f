#pragma once
// MXNet Gluon's pre-activation residual blocks (ResNetV2), with dml's names (private to
// src/model). Each block normalises its own input, so blocks end in a conv, not a ReLU.
#include <torch/torch.h>

#include <cstdint>

namespace dml::detail {

// BasicBlockV2: y = conv2(relu(bn2(conv1(a)))) + (downsample(a) or x), a = relu(bn1(x)).
class BasicBlockV2Impl : public torch::nn::Module {
 public:
  BasicBlockV2Impl(int64_t in_channels, int64_t out_channels, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Conv2d downsample{nullptr};  // conv1x1/stride, no bias, when shapes change
};
TORCH_MODULE(BasicBlockV2);

// BottleneckV2 (width = out/4): a = relu(bn1(x)); conv1 1x1, bn2, relu, conv2 3x3/stride,
// bn3, relu, conv3 1x1 (out); + (downsample(a) or x).
class BottleneckV2Impl : public torch::nn::Module {
 public:
  BottleneckV2Impl(int64_t in_channels, int64_t out_channels, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::Conv2d downsample{nullptr};
};
TORCH_MODULE(BottleneckV2);

}  // namespace dml::detail
