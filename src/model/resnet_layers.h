#pragma once
// The conv and BatchNorm layers every ResNet block and stem is made of (private to src/model).
#include <torch/torch.h>

#include <cstdint>

namespace dml::detail {

// ResNet convs carry no bias: a BatchNorm follows (v1) or precedes the next conv (v2).
torch::nn::Conv2d conv2d_no_bias(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding);
torch::nn::BatchNorm2d batch_norm(int64_t channels, bool affine = true);

// A bottleneck block ends with 4x the width of its 3x3 conv (torchvision's Bottleneck.expansion;
// Gluon's channel lists 256..2048 with channels // 4 inside); a basic block ends with its width.
constexpr int64_t kBottleneckExpansion = 4;

// Whether a block's shortcut needs a 1x1 projection: its output differs from its input in
// channels or in resolution. (Gluon tests only the channels; in the standard specs every
// strided block also changes channels, so the two rules agree.)
inline bool needs_projection(int64_t in_channels, int64_t out_channels, int64_t stride) {
  return stride != 1 || in_channels != out_channels;
}

}  // namespace dml::detail
