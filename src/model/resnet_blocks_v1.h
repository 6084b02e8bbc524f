#pragma once
// torchvision's residual blocks (ResNet v1.5), with torchvision's module names so that its
// state dicts load by name (private to src/model). Both take (in, out, stride) like the v2
// blocks, so that one stage builder serves both families; torchvision's `planes` is
// out / expansion.
#include <torch/torch.h>

#include <cstdint>

namespace dml::detail {

// BasicBlock: conv1 3x3/stride, bn1, relu, conv2 3x3, bn2, + identity/downsample, relu.
class BasicBlockV1Impl : public torch::nn::Module {
 public:
  BasicBlockV1Impl(int64_t in_channels, int64_t out_channels, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};  // conv1x1/stride (".0") + BN (".1") when shapes change
};
TORCH_MODULE(BasicBlockV1);

// Bottleneck (v1.5: the stride is on the 3x3 conv), width out/4: conv1 1x1, bn1, relu,
// conv2 3x3/stride, bn2, relu, conv3 1x1 (out), bn3, + identity/downsample, relu.
class BottleneckV1Impl : public torch::nn::Module {
 public:
  BottleneckV1Impl(int64_t in_channels, int64_t out_channels, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BottleneckV1);

}  // namespace dml::detail
