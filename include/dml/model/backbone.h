#pragma once
// The interface every backbone implements: an image batch in, a feature map out. The embedding
// net pools the map and applies the head; backbones know nothing about embeddings.
#include <torch/torch.h>

#include <cstdint>

namespace dml {

class BackboneImpl : public torch::nn::Module {
 public:
  // x: float32 (or the autocast dtype) [B, in_channels, H, W] on the module's device.
  // Returns the last feature map [B, feature_dim(), h, w], before global pooling.
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // Channels of the feature map (512 for resnet18/34, 2048 for resnet50/101/152, 128 small).
  virtual int64_t feature_dim() const = 0;
  // Channels the first layer expects.
  virtual int64_t in_channels() const = 0;
};

}  // namespace dml
