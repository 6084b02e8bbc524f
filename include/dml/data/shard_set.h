#pragma once
// Read-only access to all shards of one split (format v1, see shard_format.h).
//
// Thread safety: every method is const and may be called from several threads at once.
// HDF5 (Debian's build is not thread-safe) is serialised by one process-wide mutex; preloaded
// images are read without any lock. Copies share the same open files (cheap, shared_ptr).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dml/data/shard_format.h"

namespace at {
class Tensor;
}

namespace dml {

class ShardSet {
 public:
  // Opens every `<split>-*-of-<count>.h5` in `dir`. Checks, before reading any image, that the set
  // is complete (indices 0..count-1, one count), every attribute (format_version == 1, types),
  // dtype, rank and shape of every dataset, N equal across datasets, the same dataset/H/W/C/
  // num_classes/class_names/preprocessing in every shard, labels in [0, num_classes), and that no
  // class spans two shards. Throws dml::Error naming the file, the field and the fix.
  // preload_max_bytes: when the split's images total at most this many bytes they are read into
  // memory once (and the files closed); otherwise each read goes to the file.
  // only_shards: open just these shard indices (ascending; the rows are theirs, in that order); the
  // other files of the set may be absent. Empty: every shard, all required.
  static ShardSet open(const std::string& dir, const std::string& split,
                       int64_t preload_max_bytes = 1LL << 30, const std::vector<int>& only_shards = {});

  // The shard count of `split` in `dir` (the -of-<count> of its files), reading no file; throws when
  // there is none.
  static int shard_count(const std::string& dir, const std::string& split);

  const ShardSetInfo& info() const;  // info().size == size()
  int64_t size() const;              // total rows: rows of shard 0, then shard 1, ...
  int num_shards() const;                      // opened shards
  int total_shards() const;                    // shards in the split's set (the -of-<count>)
  const std::vector<int>& shard_indices() const;  // [num_shards()]: set index of each opened shard
  bool preloaded() const;
  const std::vector<int64_t>& labels() const;  // [size], in 0..num_classes-1
  const std::vector<int64_t>& ids() const;     // [size]
  const std::vector<int64_t>& shard_offsets() const;  // [num_shards + 1]; shard s = rows [o[s], o[s+1])
  std::vector<std::vector<int64_t>> rows_by_class() const;  // [num_classes][...], rows ascending
  int64_t image_bytes() const;  // H*W*C

  // Copies row `row` (HWC uint8, image_bytes() bytes) to `dst`. Throws if row is out of range.
  void read_image(int64_t row, uint8_t* dst) const;
  // uint8 [n,H,W,C] on the CPU, rows in the given order (repeats allowed).
  at::Tensor read_images(const std::vector<int64_t>& rows) const;

 private:
  struct Impl;
  explicit ShardSet(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace dml
