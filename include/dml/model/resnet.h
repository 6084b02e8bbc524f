#pragma once
// ResNet backbones (no classifier), two families built on one skeleton (ResNetImpl):
//    [input_bn] conv1 [bn1, ReLU] [max-pool 3/2 pad 1] layer1..layer4 [bn_final, ReLU]
//  - ResNetV1: torchvision's ResNet (v1.5: stride on the 3x3 conv of a bottleneck). Module,
//    parameter and buffer names are torchvision's (conv1, bn1, layer1.0.conv1,
//    layer1.0.downsample.0, ...), so a torchvision state dict (minus fc.*) loads by name.
//  - ResNetV2: MXNet Gluon's pre-activation ResNetV2 (the reference's resnet50_v2): input
//    BatchNorm without affine parameters, conv7x7/2 64, BN, ReLU, maxpool 3/2 pad 1, then
//    BasicBlockV2 / BottleneckV2 stages (BN-ReLU-conv; the downsample conv reads the
//    pre-activated input), final BN-ReLU. Names: input_bn, conv1, bn1, layerN.i.{bn1,conv1,
//    bn2,conv2,bn3,conv3,downsample}, bn_final.
// Both: stage s (0..3) ends with 64 * 2^s channels, times 4 for bottleneck depths (50, 101,
// 152); its first block carries the stride (1 for layer1, else 2) and the projection.
// BatchNorm: eps 1e-5, momentum 0.1 (torch convention; MXNet's 0.9).
// small_input_stem (images <= 64 px): the first conv is 3x3 stride 1 pad 1 and there is no
// max-pool. v1 keeps bn1+ReLU after it; v2 (as Gluon's thumbnail variant) has no bn1 after it,
// because its first block pre-activates anyway.
#include <array>
#include <cstdint>

#include "dml/model/backbone.h"

namespace dml {

struct ResNetOptions {
  int depth = 50;               // 18, 34, 50, 101 or 152
  int64_t in_channels = 3;
  bool small_input_stem = false;
};

// Blocks per stage and whether the blocks are bottlenecks, for a depth (dml::Error otherwise).
struct ResNetSpec {
  bool bottleneck = true;
  std::array<int64_t, 4> blocks{};
};
ResNetSpec resnet_spec(int depth);

enum class ResNetVersion { kV1, kV2 };

// The skeleton shared by both families; which optional parts exist and which residual blocks
// fill the stages depends on the version (src/model/resnet_family.h says how and why).
class ResNetImpl : public BackboneImpl {
 public:
  ResNetImpl(ResNetVersion version, const ResNetOptions& options);
  torch::Tensor forward(torch::Tensor x) override;  // [B, C, H, W] -> [B, F, H/32, W/32] (H/8 small stem)
  int64_t feature_dim() const override { return feature_dim_; }
  int64_t in_channels() const override { return options_.in_channels; }

 private:
  ResNetOptions options_;
  int64_t feature_dim_ = 0;
  torch::nn::BatchNorm2d input_bn{nullptr};  // v2 only
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};       // null in v2 with the small-input stem
  std::array<torch::nn::Sequential, 4> layers_;  // registered as layer1..layer4
  torch::nn::BatchNorm2d bn_final{nullptr};  // v2 only
};

class ResNetV1Impl : public ResNetImpl {
 public:
  explicit ResNetV1Impl(const ResNetOptions& options) : ResNetImpl(ResNetVersion::kV1, options) {}
};
TORCH_MODULE(ResNetV1);

class ResNetV2Impl : public ResNetImpl {
 public:
  explicit ResNetV2Impl(const ResNetOptions& options) : ResNetImpl(ResNetVersion::kV2, options) {}
};
TORCH_MODULE(ResNetV2);

}  // namespace dml
