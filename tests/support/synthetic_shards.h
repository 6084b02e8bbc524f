#pragma once
// The one synthetic shard fixture of the suites. Every test that needs a shard set builds it here:
// a split in memory (make_synthetic_split), written with dml's own writer (SyntheticSplit::write).
// Variants are made by editing the returned split (labels, info, images) before writing, or the
// written files afterwards (tests/data/shard_validation_test.cpp); the one file written by another
// program is h5py's, in tests/data/shard_roundtrip_test.cpp (ReadsFileWrittenByH5py).
//
// Pixels: every class has a fixed random pattern (uniform in [40, 215] per byte); each image is
// its class's pattern plus independent Gaussian noise, clamped to 0..255. So images differ from
// each other (byte-exact round trips can tell them apart) and classes are learnable (dist_train).
// Everything is fixed by `seed`.
#include <cstdint>
#include <string>
#include <vector>

#include "dml/data/shard_format.h"

namespace dml::test {

struct SyntheticSpec {
  std::string dataset = "synthetic";
  int64_t num_classes = 4;
  int64_t per_class = 3;              // images of every class, unless class_sizes is given
  std::vector<int64_t> class_sizes;   // images of class c (overrides per_class when not empty)
  int64_t height = 8, width = 8, channels = 1;
  bool class_names = true;            // names "c0", "c1", ...; false: no class_names attribute
  bool interleaved = false;           // false: class blocks (0,0,..,1,1,..); true: a fixed shuffle of them
  int64_t first_id = 0, id_stride = 1;  // ids[i] = first_id + id_stride * i (input order)
  double noise_stddev = 25.0;
  uint32_t seed = 7;
};

// One split in memory, in input order, as SplitWriter / write_split take it.
struct SyntheticSplit {
  ShardSetInfo info;             // dataset, num_classes, height, width, channels, class_names
  std::vector<uint8_t> images;   // size() images of image_bytes() bytes, HWC
  std::vector<int64_t> labels, ids;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t image_bytes() const { return info.height * info.width * info.channels; }
  const uint8_t* image(int64_t i) const { return images.data() + i * image_bytes(); }
  // Input index of the image with this id (ids are unique); -1 when none.
  int64_t index_of_id(int64_t id) const;
  // Writes the split as `shards` format-v1 shards with dml::write_split (class c in shard c % shards)
  // into `dir`; returns the shard paths in index order.
  std::vector<std::string> write(const std::string& dir, const std::string& split, int shards,
                                 bool overwrite = false) const;
};

SyntheticSplit make_synthetic_split(const SyntheticSpec& spec);

// Path of shard `index` of `count` of `split` in `dir`.
std::string shard_path(const std::string& dir, const std::string& split, int index, int count);

// The dist_train data set: train (num_train_classes x per_class) and test (num_test_classes x
// per_class) splits of side x side gray images, 2 shards each, dataset "synthetic". Overwrites.
void write_synthetic_shards(const std::string& dir, int64_t num_train_classes, int64_t num_test_classes,
                            int64_t per_class, int64_t side);

}  // namespace dml::test
