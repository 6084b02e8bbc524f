#pragma once
// HDF5 shard format, version 1 (full description in include/dml/data/SHARD_FORMAT.md).
//
// One file per shard, `<split>-<index>-of-<count>.h5`, index and count zero-padded to 5 digits.
// Datasets: `images` uint8 [N,H,W,C] (HWC, RGB or gray, chunked one image per chunk),
//           `labels` int64 [N] (class in the split's own label space 0..num_classes-1),
//           `ids` int64 [N] (source image id).
// Root attributes: format_version (int, 1), dataset (string), split (string), num_classes (int64),
// height, width, channels (int64), class_names (optional string array indexed by label),
// resize (int64, 0 = none), bbox_crop (int, 0/1).
// A class lives wholly in one shard: class c is stored in shard c % count.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dml {

inline constexpr int kShardFormatVersion = 1;

// What a split holds. `size` is the total number of images (ignored by the writers, which count).
struct ShardSetInfo {
  std::string dataset, split;
  int64_t num_classes = 0, height = 0, width = 0, channels = 0, size = 0;
  std::vector<std::string> class_names;  // empty, or one name per label
  // Preprocessing that produced the images (recorded, not applied by readers).
  int64_t resize = 0;      // side length images were resized to; 0 = original size
  bool bbox_crop = false;  // images were cropped to their bounding boxes
};

// "train-00003-of-00008.h5" for ("train", 3, 8).
std::string shard_file_name(const std::string& split, int index, int count);

// Parses a shard file name (no directory). Returns nullopt when `file_name` is not
// `<split>-<5 digits>-of-<5 digits>.h5`; otherwise split, index and count.
struct ShardFileName {
  std::string split;
  int index = 0, count = 0;
};
std::optional<ShardFileName> parse_shard_file_name(const std::string& file_name);

// Shard files (names only, sorted) of `split` in `dir`, or of every split when `split` is empty.
// Temporaries (`*.h5.tmp`) are not listed. Missing `dir` gives an empty list.
std::vector<std::string> list_shard_files(const std::string& dir, const std::string& split = "");

}  // namespace dml
