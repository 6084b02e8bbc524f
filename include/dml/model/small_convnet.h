#pragma once
// A small fast backbone for tests and small images (28x28 Fashion-MNIST, 32x32): three
// conv3x3 blocks, 32 / 64 / 128 channels, strides 1 / 2 / 2, each conv-BN-ReLU (about 94k
// parameters at 3 input channels). The no-BN variant (conv with bias, then ReLU) has no batch
// statistics, so its training is exactly world-size invariant.
// Names: conv1, bn1, conv2, bn2, conv3, bn3 (no bnN without BN).
#include <cstdint>

#include "dml/model/backbone.h"

namespace dml {

class SmallConvNetImpl : public BackboneImpl {
 public:
  SmallConvNetImpl(int64_t in_channels, bool batch_norm);
  torch::Tensor forward(torch::Tensor x) override;  // [B, C, H, W] -> [B, 128, ceil(H/4), ceil(W/4)]
  int64_t feature_dim() const override { return 128; }
  int64_t in_channels() const override { return in_channels_; }

 private:
  int64_t in_channels_;
  bool batch_norm_;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
};
TORCH_MODULE(SmallConvNet);

}  // namespace dml
