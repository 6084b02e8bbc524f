// Writer/reader round trip, class round-robin, concurrent reads, and a file written by h5py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <thread>

#include "dml/data/shard_set.h"
#include "dml/data/shard_writer.h"
#include "dml/util/error.h"
#include "synthetic_shards.h"
#include "test_support.h"

namespace {
using dml::test::SyntheticSplit;
using dml::test::TempDir;

// 7 classes of uneven sizes (40 images) in a shuffled order, ids 1000 + 3*i, from the shared fixture.
SyntheticSplit make_source(int64_t h = 5, int64_t w = 4, int64_t c = 3) {
  dml::test::SyntheticSpec spec;
  spec.dataset = "unit";
  spec.num_classes = 7;
  spec.class_sizes = {4, 7, 5, 6, 3, 8, 7};
  spec.interleaved = true;
  spec.height = h;
  spec.width = w;
  spec.channels = c;
  spec.first_id = 1000;
  spec.id_stride = 3;
  return dml::test::make_synthetic_split(spec);
}

// The byte-exact checks below can only tell rows apart if the source images differ.
void expect_distinct_images(const SyntheticSplit& s) {
  std::set<std::vector<uint8_t>> seen;
  for (int64_t i = 0; i < s.size(); ++i) seen.emplace(s.image(i), s.image(i) + s.image_bytes());
  EXPECT_EQ(static_cast<int64_t>(seen.size()), s.size());
}

TEST(ShardRoundTrip, ByteExactWithClassRoundRobin) {
  TempDir dir;
  const SyntheticSplit s = make_source();
  ASSERT_EQ(s.size(), 40);
  expect_distinct_images(s);
  s.write(dir.path(), "train", /*shards=*/3);
  EXPECT_EQ(dml::test::list_files(dir.path()),
            (std::vector<std::string>{"train-00000-of-00003.h5", "train-00001-of-00003.h5", "train-00002-of-00003.h5"}));

  for (int64_t preload : {int64_t{1} << 30, int64_t{0}}) {
    const dml::ShardSet set = dml::ShardSet::open(dir.path(), "train", preload);
    EXPECT_EQ(set.preloaded(), preload > 0);
    ASSERT_EQ(set.size(), 40);
    EXPECT_EQ(set.num_shards(), 3);
    EXPECT_EQ(set.info().num_classes, 7);
    EXPECT_EQ(set.info().class_names, s.info.class_names);
    EXPECT_EQ(set.info().class_names.at(6), "c6");
    EXPECT_EQ(set.info().dataset, "unit");
    EXPECT_EQ(set.info().split, "train");
    EXPECT_EQ(set.image_bytes(), 60);

    // Expected layout: shard k holds the images of classes c with c % 3 == k, in input order.
    std::vector<int64_t> expected_order;
    std::vector<int64_t> expected_offsets = {0};
    for (int k = 0; k < 3; ++k) {
      for (int64_t i = 0; i < 40; ++i) {
        if (s.labels[i] % 3 == k) expected_order.push_back(i);
      }
      expected_offsets.push_back(static_cast<int64_t>(expected_order.size()));
    }
    EXPECT_EQ(set.shard_offsets(), expected_offsets);
    std::vector<uint8_t> image(60);
    for (int64_t row = 0; row < 40; ++row) {
      const int64_t source = expected_order[row];
      EXPECT_EQ(set.labels()[row], s.labels[source]);
      EXPECT_EQ(set.ids()[row], s.ids[source]);
      set.read_image(row, image.data());
      for (int64_t p = 0; p < 60; ++p) ASSERT_EQ(image[p], s.image(source)[p]) << "row " << row << " byte " << p;
    }
    const auto by_class = set.rows_by_class();
    ASSERT_EQ(by_class.size(), 7u);
    int64_t total = 0;
    for (int64_t c = 0; c < 7; ++c) {
      EXPECT_TRUE(std::is_sorted(by_class[c].begin(), by_class[c].end()));
      for (int64_t row : by_class[c]) EXPECT_EQ(set.labels()[row], c);
      total += static_cast<int64_t>(by_class[c].size());
    }
    EXPECT_EQ(total, 40);

    const at::Tensor batch = set.read_images({5, 0, 5, 39});
    ASSERT_EQ(batch.sizes(), (c10::IntArrayRef{4, 5, 4, 3}));
    EXPECT_EQ(batch.dtype(), torch::kUInt8);
    EXPECT_EQ(batch[0][2][1][0].item<int>(), s.image(expected_order[5])[(2 * 4 + 1) * 3]);
    EXPECT_EQ(batch[3][4][3][2].item<int>(), s.image(expected_order[39])[59]);
    EXPECT_TRUE(torch::equal(batch[0], batch[2]));
    EXPECT_THROW(set.read_image(40, image.data()), dml::Error);
    EXPECT_THROW(set.read_image(-1, image.data()), dml::Error);
  }
}

TEST(ShardRoundTrip, ConcurrentReadsEqualSerialReads) {
  TempDir dir;
  const SyntheticSplit s = make_source(/*h=*/16, /*w=*/12, /*c=*/3);
  expect_distinct_images(s);
  s.write(dir.path(), "test", /*shards=*/2);
  const dml::ShardSet set = dml::ShardSet::open(dir.path(), "test", /*preload_max_bytes=*/0);
  ASSERT_FALSE(set.preloaded());
  const int64_t bytes = set.image_bytes();
  std::vector<uint8_t> serial(static_cast<size_t>(set.size() * bytes));
  for (int64_t r = 0; r < set.size(); ++r) set.read_image(r, serial.data() + r * bytes);

  std::vector<std::vector<uint8_t>> results(4, std::vector<uint8_t>(serial.size()));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const dml::ShardSet copy = set;  // copies share the open files
      for (int repeat = 0; repeat < 20; ++repeat) {
        for (int64_t k = 0; k < copy.size(); ++k) {
          const int64_t r = (k * (2 * t + 1) + repeat) % copy.size();  // a different order per thread
          copy.read_image(r, results[t].data() + r * bytes);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_TRUE(results[t] == serial) << "thread " << t;
  // And serial reads equal the source images (so equality above is not trivially empty).
  for (int64_t r = 0; r < set.size(); ++r) {
    const int64_t source = s.index_of_id(set.ids()[r]);
    ASSERT_GE(source, 0) << "row " << r;
    ASSERT_EQ(std::memcmp(serial.data() + r * bytes, s.image(source), static_cast<size_t>(bytes)), 0) << "row " << r;
  }
}

TEST(ShardRoundTrip, ReadsFileWrittenByH5py) {
  TempDir dir;
  // The one test of files written by another program: two shards written by h5py exactly as
  // SHARD_FORMAT.md documents (one contiguous, one chunked), fixed-length string attributes in one,
  // variable-length in the other (tests/data/python/write_h5py_shards.py).
  const auto result = dml::test::run_python_file("tests/data/python/write_h5py_shards.py", {dir.path()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  for (int64_t preload : {int64_t{1} << 20, int64_t{0}}) {
    const dml::ShardSet set = dml::ShardSet::open(dir.path(), "val", preload);
    ASSERT_EQ(set.size(), 12);
    EXPECT_EQ(set.info().dataset, "toy");
    EXPECT_EQ(set.info().class_names, (std::vector<std::string>{"zero", "one", "two", "three"}));
    EXPECT_EQ(set.info().height, 6);
    EXPECT_EQ(set.info().channels, 3);
    // Shard 0: classes 0, 2; shard 1: classes 1, 3; three images each.
    const std::vector<int64_t> expected_labels = {0, 0, 0, 2, 2, 2, 1, 1, 1, 3, 3, 3};
    EXPECT_EQ(set.labels(), expected_labels);
    std::vector<uint8_t> image(90);
    for (int64_t r = 0; r < 12; ++r) {
      const int64_t id = 100 * expected_labels[r] + r % 3;
      EXPECT_EQ(set.ids()[r], id);
      set.read_image(r, image.data());
      for (int64_t p = 0; p < 90; ++p) ASSERT_EQ(image[p], (p * 3 + id * 17) % 251) << "row " << r << " byte " << p;
    }
  }
}

TEST(ShardWriter, RefusesExistingShardsAndOverwriteReplacesTheWholeSet) {
  TempDir dir;
  const SyntheticSplit s = make_source();
  s.write(dir.path(), "train", 3);
  try {
    s.write(dir.path(), "train", 2);
    FAIL() << "expected an error";
  } catch (const dml::Error& e) {
    EXPECT_NE(std::string(e.what()).find("already holds shards"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
  }
  EXPECT_EQ(dml::test::list_files(dir.path()).size(), 3u);
  s.write(dir.path(), "train", 2, /*overwrite=*/true);
  EXPECT_EQ(dml::test::list_files(dir.path()),
            (std::vector<std::string>{"train-00000-of-00002.h5", "train-00001-of-00002.h5"}));
  EXPECT_EQ(dml::ShardSet::open(dir.path(), "train").num_shards(), 2);
}

TEST(ShardWriter, EmptyClassAndUnfinishedWriterLeaveNoFile) {
  TempDir dir;
  SyntheticSplit s = make_source();
  for (auto& label : s.labels) {
    if (label == 4) label = 3;  // class 4 ('c4') now has no images
  }
  try {
    s.write(dir.path(), "train", 2);
    FAIL() << "expected an error";
  } catch (const dml::Error& e) {
    EXPECT_NE(std::string(e.what()).find("class 4 ('c4') has no images"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(dml::test::list_files(dir.path()).empty());
  {
    const SyntheticSplit ok = make_source();
    dml::SplitWriter writer(dir.path(), "train", ok.info, ok.labels, ok.ids, 2, false);
    writer.write_image(0, ok.images.data());
    EXPECT_EQ(dml::test::list_files(dir.path()).size(), 2u);  // the two temporaries
    EXPECT_THROW(writer.finish(), dml::Error);                 // 39 images missing
  }
  EXPECT_TRUE(dml::test::list_files(dir.path()).empty());
}

}  // namespace
