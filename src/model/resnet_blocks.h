#pragma once
// Residual blocks of the two ResNet families (private to src/model).
#include <torch/torch.h>

#include <cstdint>

namespace dml::detail {

torch::nn::Conv2d conv2d_no_bias(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding);
torch::nn::BatchNorm2d batch_norm(int64_t channels, bool affine = true);

// torchvision BasicBlock: conv1 3x3/stride, bn1, relu, conv2 3x3, bn2, + identity/downsample, relu.
class BasicBlockV1Impl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockV1Impl(int64_t in_channels, int64_t planes, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};  // conv1x1/stride (".0") + BN (".1") when shapes change
};
TORCH_MODULE(BasicBlockV1);

// torchvision Bottleneck (v1.5): conv1 1x1, bn1, relu, conv2 3x3/stride, bn2, relu, conv3 1x1 (x4),
// bn3, + identity/downsample, relu.
class BottleneckV1Impl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckV1Impl(int64_t in_channels, int64_t planes, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BottleneckV1);

// Gluon BasicBlockV2: y = conv2(relu(bn2(conv1(a)))) + (downsample(a) or x), a = relu(bn1(x)).
class BasicBlockV2Impl : public torch::nn::Module {
 public:
  BasicBlockV2Impl(int64_t in_channels, int64_t out_channels, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Conv2d downsample{nullptr};  // conv1x1/stride, no bias, when in != out channels
};
TORCH_MODULE(BasicBlockV2);

// Gluon BottleneckV2 (width = out/4): a = relu(bn1(x)); conv1 1x1, bn2, relu, conv2 3x3/stride,
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
