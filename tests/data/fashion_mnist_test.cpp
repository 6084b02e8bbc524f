// Fashion-MNIST from Debian's IDX files, cross-checked against an independent gzip+NumPy parse.
#include <gtest/gtest.h>

#include <fstream>

#include "dml/data/shard_set.h"
#include "dml/data/sources.h"
#include "test_support.h"

namespace {
using dml::test::TempDir;

// The ids whose images tests/data/python/fashion_mnist_idx_parse.py writes, in its order.
const std::vector<int64_t> kCheckedIds = {0, 1, 12345, 59999, 60000, 69999};

// The independent parse (gzip + NumPy) of the IDX files.
struct Reference {
  std::vector<int64_t> labels;   // [70000]: train file then test file
  std::vector<uint8_t> images;   // [6 * 784] for kCheckedIds
};

const Reference& reference() {
  static const Reference ref = [] {
    TempDir dir;
    const auto result = dml::test::run_python_file("tests/data/python/fashion_mnist_idx_parse.py",
                                                   {DML_FASHION_MNIST_DIR, dir.path()});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    Reference r;
    r.labels.resize(70000);
    std::ifstream(dir.file("labels.bin"), std::ios::binary).read(reinterpret_cast<char*>(r.labels.data()), 70000 * 8);
    r.images.resize(6 * 784);
    std::ifstream(dir.file("images.bin"), std::ios::binary).read(reinterpret_cast<char*>(r.images.data()), 6 * 784);
    return r;
  }();
  return ref;
}

void prepare(const dml::FashionMnistOptions& source, const std::string& out) {
  dml::PrepareOptions options;
  options.output_dir = out;
  options.shards = 3;
  options.threads = 2;
  options.progress = false;
  dml::prepare_splits(dml::plan_fashion_mnist(source), options);
}

TEST(FashionMnist, OfficialSplitsMatchIdxFiles) {
  TempDir dir;
  prepare({DML_FASHION_MNIST_DIR, /*class_split=*/false, /*resize=*/0}, dir.path());
  const Reference& ref = reference();
  const dml::ShardSet train = dml::ShardSet::open(dir.path(), "train");
  const dml::ShardSet test = dml::ShardSet::open(dir.path(), "test");
  ASSERT_EQ(train.size(), 60000);
  ASSERT_EQ(test.size(), 10000);
  EXPECT_EQ(train.num_shards(), 3);
  EXPECT_EQ(train.info().num_classes, 10);
  EXPECT_EQ(train.info().height, 28);
  EXPECT_EQ(train.info().channels, 1);
  EXPECT_EQ(train.info().class_names.front(), "T-shirt/top");
  EXPECT_EQ(train.info().class_names.back(), "Ankle boot");
  std::vector<int> seen(70000, 0);
  for (const auto* set : {&train, &test}) {
    for (int64_t r = 0; r < set->size(); ++r) {
      const int64_t id = set->ids()[r];
      ASSERT_TRUE(id >= 0 && id < 70000);
      ASSERT_EQ(id < 60000, set == &train) << "id " << id;
      ASSERT_EQ(set->labels()[r], ref.labels[id]) << "id " << id;
      ++seen[id];
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 70000);

  std::vector<uint8_t> pixels(784);
  for (size_t k = 0; k < kCheckedIds.size(); ++k) {
    const dml::ShardSet& set = kCheckedIds[k] < 60000 ? train : test;
    const auto row = std::find(set.ids().begin(), set.ids().end(), kCheckedIds[k]) - set.ids().begin();
    set.read_image(row, pixels.data());
    EXPECT_TRUE(std::equal(pixels.begin(), pixels.end(), ref.images.begin() + k * 784)) << "id " << kCheckedIds[k];
  }
}

TEST(FashionMnist, ClassSplitPoolsBothFiles) {
  TempDir dir;
  prepare({DML_FASHION_MNIST_DIR, /*class_split=*/true, /*resize=*/0}, dir.path());
  const Reference& ref = reference();
  const dml::ShardSet train = dml::ShardSet::open(dir.path(), "train");
  const dml::ShardSet test = dml::ShardSet::open(dir.path(), "test");
  const int64_t low = std::count_if(ref.labels.begin(), ref.labels.end(), [](int64_t l) { return l < 5; });
  EXPECT_EQ(train.size(), low);
  EXPECT_EQ(test.size(), 70000 - low);
  EXPECT_EQ(train.info().num_classes, 5);
  EXPECT_EQ(test.info().class_names, (std::vector<std::string>{"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}));
  for (int64_t r = 0; r < train.size(); ++r) ASSERT_EQ(train.labels()[r], ref.labels[train.ids()[r]]);
  for (int64_t r = 0; r < test.size(); ++r) ASSERT_EQ(test.labels()[r] + 5, ref.labels[test.ids()[r]]);
  std::vector<uint8_t> pixels(784);
  for (size_t k = 0; k < kCheckedIds.size(); ++k) {
    const dml::ShardSet& set = ref.labels[kCheckedIds[k]] < 5 ? train : test;
    const auto row = std::find(set.ids().begin(), set.ids().end(), kCheckedIds[k]) - set.ids().begin();
    ASSERT_LT(row, set.size());
    set.read_image(row, pixels.data());
    EXPECT_TRUE(std::equal(pixels.begin(), pixels.end(), ref.images.begin() + k * 784)) << "id " << kCheckedIds[k];
  }
}

}  // namespace
