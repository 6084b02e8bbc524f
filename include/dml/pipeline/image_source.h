#pragma once
// The pipeline's only view of a data split: random access to uint8 HWC images plus their labels.
// The data area adapts its shard reader to this; tests build sources in memory.
#include <cstdint>
#include <functional>
#include <vector>

namespace dml {

// Random access to the images of one split.
struct ImageSource {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<int64_t> labels;  // [size], split label space 0..num_classes-1
  int64_t num_classes = 0;
  // read(row, dst) writes height*width*channels bytes (HWC, uint8) of image `row` (0 <= row < size())
  // to dst. Must be safe to call from several threads at once (the loaders' workers do).
  std::function<void(int64_t row, uint8_t* dst)> read;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t image_bytes() const { return height * width * channels; }
};

}  // namespace dml
