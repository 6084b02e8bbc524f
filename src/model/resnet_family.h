#pragma once
// What distinguishes the two ResNet families inside the shared skeleton (src/model/resnet.cpp):
// their residual blocks and three optional BatchNorms (private to src/model).
#include <torch/torch.h>

#include <cstdint>

#include "dml/model/resnet.h"

namespace dml::detail {

// Builds one residual block from in_channels to out_channels; stride != 1 or a change of
// channels makes the block project its shortcut.
using BlockFactory = torch::nn::AnyModule (*)(int64_t in_channels, int64_t out_channels, int64_t stride);

struct ResNetFamily {
  BlockFactory basic = nullptr;       // depths 18 and 34
  BlockFactory bottleneck = nullptr;  // depths 50, 101 and 152
  bool input_bn = false;              // affine-free BN on the raw input, before conv1
  bool bn1_after_small_stem = false;  // keep bn1+ReLU after the small-input stem's conv
  bool final_bn = false;              // BN+ReLU after layer4
};

const ResNetFamily& resnet_family(ResNetVersion version);

}  // namespace dml::detail
