#pragma once
// Writes one split as format-v1 shards (see shard_format.h).
//
// Streaming use (the prepare tool):
//   SplitWriter w(dir, "train", info, labels, ids, /*shards=*/4, /*overwrite=*/false);
//   for each i (any order, any thread): w.write_image(i, hwc_bytes);
//   w.finish();   // after every image is written: closes and renames the temporaries
// Each shard is written to `<name>.tmp` and renamed by finish(). A writer destroyed before
// finish() (an error anywhere) removes its temporaries, so no partial shard is left behind.
// Rows inside a shard keep the input order of the images of that shard's classes.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dml/data/shard_format.h"

namespace dml {

class SplitWriter {
 public:
  // info: dataset, num_classes, height, width, channels, class_names, resize, bbox_crop
  // (info.split and info.size are ignored). labels/ids: one per image, in input order.
  // Checks: labels in range, every class has at least one image, 1 <= shards <= num_classes,
  // class_names empty or num_classes long, and that `dir` holds no shards of `split` unless
  // `overwrite` (then the old shards of this split are deleted by finish()). Creates `dir`.
  SplitWriter(const std::string& dir, const std::string& split, const ShardSetInfo& info,
              std::vector<int64_t> labels, std::vector<int64_t> ids, int shards, bool overwrite);
  ~SplitWriter();
  SplitWriter(const SplitWriter&) = delete;
  SplitWriter& operator=(const SplitWriter&) = delete;

  int64_t size() const;  // number of images
  // Writes image `index` (input order), H*W*C bytes HWC. Thread-safe. Each index exactly once.
  void write_image(int64_t index, const uint8_t* hwc);
  // Checks every image was written, closes and renames the temporaries. Returns the shard paths.
  std::vector<std::string> finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Convenience: writes a whole split from memory. images_nhwc holds labels.size() images of
// H*W*C bytes each, in the order of labels/ids. Same checks and guarantees as SplitWriter.
void write_split(const std::string& dir, const std::string& split, const ShardSetInfo& info_without_size,
                 const uint8_t* images_nhwc, const std::vector<int64_t>& labels,
                 const std::vector<int64_t>& ids, int shards, bool overwrite);

}  // namespace dml
