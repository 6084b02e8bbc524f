#pragma once
// One replica's batch as the loaders deliver it (host memory, uint8; normalise on the device).
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace dml {

struct Batch {
  uint64_t step = 0;          // training step, or batch number for evaluation
  at::Tensor images;          // uint8 [B, out_channels, crop, crop], CPU (pinned if requested and CUDA exists)
  at::Tensor labels;          // int64 [B], CPU
  at::Tensor global_indices;  // int64 [B]: train = positions in the global batch (r*B + i); eval = source rows
};

}  // namespace dml
