#pragma once
// Data preparation: a source (CUB, image folder, Fashion-MNIST; see sources.h) is turned into
// SplitPlans, and prepare_splits() decodes every image in parallel and writes format-v1 shards.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dml/data/shard_format.h"

namespace dml {

// One split to write. labels/ids have one entry per image, in source order.
struct SplitPlan {
  ShardSetInfo info;  // split, dataset, num_classes, height, width, channels, class_names, resize, bbox_crop
  std::vector<int64_t> labels, ids;
  // Writes image i (0 <= i < labels.size()) as H*W*C bytes, HWC, to dst. Called from several
  // threads at once. Throws dml::Error naming the source file and the fix.
  std::function<void(int64_t i, uint8_t* dst)> decode;
};

struct PrepareOptions {
  std::string output_dir;
  int shards = 1;          // per split; class c goes to shard c % shards
  int threads = 0;         // decoding threads; 0 = hardware concurrency
  bool overwrite = false;  // replace shards already in output_dir instead of refusing
  bool progress = true;    // progress bar on a terminal, plain lines otherwise
};

struct PrepareSummary {
  int64_t images = 0, classes = 0, shards = 0, bytes = 0;  // bytes: total size of the shard files
  double seconds = 0;
  double images_per_second() const { return seconds > 0 ? images / seconds : 0; }
};

// Refuses (dml::Error) when output_dir holds any shard and !overwrite -- before decoding anything.
// Writes all splits to temporaries and renames them only after every image of every split was
// decoded, so an error anywhere leaves no shard file behind.
PrepareSummary prepare_splits(const std::vector<SplitPlan>& plans, const PrepareOptions& options);

}  // namespace dml
