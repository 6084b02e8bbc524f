#include "synthetic_shards.h"

#include <algorithm>
#include <random>
#include <stdexcept>

#include "dml/data/shard_writer.h"

namespace dml::test {

int64_t SyntheticSplit::index_of_id(int64_t id) const {
  const auto it = std::find(ids.begin(), ids.end(), id);
  return it == ids.end() ? -1 : static_cast<int64_t>(it - ids.begin());
}

std::vector<std::string> SyntheticSplit::write(const std::string& dir, const std::string& split, int shards,
                                               bool overwrite) const {
  write_split(dir, split, info, images.data(), labels, ids, shards, overwrite);
  std::vector<std::string> paths;
  for (int s = 0; s < shards; ++s) paths.push_back(shard_path(dir, split, s, shards));
  return paths;
}

SyntheticSplit make_synthetic_split(const SyntheticSpec& spec) {
  std::vector<int64_t> sizes = spec.class_sizes;
  if (sizes.empty()) sizes.assign(static_cast<size_t>(spec.num_classes), spec.per_class);
  if (static_cast<int64_t>(sizes.size()) != spec.num_classes) {
    throw std::invalid_argument("make_synthetic_split: class_sizes must have num_classes entries");
  }
  SyntheticSplit s;
  s.info.dataset = spec.dataset;
  s.info.num_classes = spec.num_classes;
  s.info.height = spec.height;
  s.info.width = spec.width;
  s.info.channels = spec.channels;
  if (spec.class_names) {
    for (int64_t c = 0; c < spec.num_classes; ++c) s.info.class_names.push_back("c" + std::to_string(c));
  }
  for (int64_t c = 0; c < spec.num_classes; ++c) s.labels.insert(s.labels.end(), static_cast<size_t>(sizes[c]), c);

  std::mt19937 rng(spec.seed);
  if (spec.interleaved) {
    // Fisher-Yates with a plain modulo draw: the same order with every standard library.
    for (size_t i = s.labels.size(); i > 1; --i) std::swap(s.labels[i - 1], s.labels[rng() % i]);
  }
  for (int64_t i = 0; i < s.size(); ++i) s.ids.push_back(spec.first_id + spec.id_stride * i);

  const int64_t bytes = s.image_bytes();
  std::uniform_int_distribution<int> base(40, 215);
  std::normal_distribution<float> noise(0.f, static_cast<float>(spec.noise_stddev));
  std::vector<std::vector<int>> patterns(static_cast<size_t>(spec.num_classes), std::vector<int>(bytes));
  for (auto& pattern : patterns) {
    for (auto& p : pattern) p = base(rng);
  }
  s.images.reserve(static_cast<size_t>(s.size() * bytes));
  for (int64_t i = 0; i < s.size(); ++i) {
    const auto& pattern = patterns[s.labels[i]];
    for (int64_t p = 0; p < bytes; ++p) {
      s.images.push_back(static_cast<uint8_t>(std::clamp(pattern[p] + noise(rng), 0.f, 255.f)));
    }
  }
  return s;
}

std::string shard_path(const std::string& dir, const std::string& split, int index, int count) {
  return dir + "/" + shard_file_name(split, index, count);
}

void write_synthetic_shards(const std::string& dir, int64_t num_train_classes, int64_t num_test_classes,
                            int64_t per_class, int64_t side) {
  SyntheticSpec spec;
  spec.per_class = per_class;
  spec.height = spec.width = side;
  spec.num_classes = num_train_classes;
  spec.seed = 7;
  make_synthetic_split(spec).write(dir, "train", /*shards=*/2, /*overwrite=*/true);
  spec.num_classes = num_test_classes;
  spec.seed = 8;
  make_synthetic_split(spec).write(dir, "test", /*shards=*/2, /*overwrite=*/true);
}

}  // namespace dml::test
