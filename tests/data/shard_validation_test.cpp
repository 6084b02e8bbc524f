// ShardSet::open rejects malformed shard sets with a message naming the file, the field and the fix.
// Every case starts from a valid split written by the shared fixture (tests/support/synthetic_shards.h)
// and makes one small change: to the split before writing, or to one written file with the HDF5 C API.
// (Files written by h5py are covered by ShardRoundTrip.ReadsFileWrittenByH5py.)
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <functional>
#include <stdexcept>

#include "dml/data/shard_set.h"
#include "dml/util/error.h"
#include "synthetic_shards.h"
#include "test_support.h"

namespace {
namespace fs = std::filesystem;
using dml::test::SyntheticSplit;
using dml::test::TempDir;

constexpr int64_t kHeight = 4, kWidth = 3, kChannels = 1, kClasses = 4;

// The valid split of every case: "train", dataset "toy", 4 classes of 3 gray 4x3 images, in class
// order. Written as 2 shards, shard 1 (train-00001-of-00002.h5) holds classes 1 and 3: 6 rows.
SyntheticSplit valid_split() {
  dml::test::SyntheticSpec spec;
  spec.dataset = "toy";
  spec.num_classes = kClasses;
  spec.per_class = 3;
  spec.height = kHeight;
  spec.width = kWidth;
  spec.channels = kChannels;
  return dml::test::make_synthetic_split(spec);
}

// ---- small edits of a written shard with the HDF5 C API ---------------------------------------
// Tests run one at a time in this process and nothing else touches HDF5 meanwhile, so these calls
// need not take dml's HDF5 mutex.
hid_t ok(hid_t id, const char* what) {
  if (id < 0) throw std::runtime_error(std::string("HDF5 edit failed: ") + what);
  return id;
}

// Opens `path` read-write, runs `edit` on its root group, closes it.
void edit_file(const std::string& path, const std::function<void(hid_t root)>& edit) {
  const hid_t file = ok(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), path.c_str());
  edit(file);
  ok(H5Fclose(file), "H5Fclose");
}

void delete_attribute(hid_t root, const char* name) { ok(H5Adelete(root, name), name); }

// Replaces (or adds) a scalar integer attribute, stored as int64.
void set_int_attribute(hid_t root, const char* name, int64_t value) {
  if (H5Aexists(root, name) > 0) delete_attribute(root, name);
  const hid_t space = ok(H5Screate(H5S_SCALAR), "H5Screate");
  const hid_t attribute = ok(H5Acreate2(root, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), name);
  ok(H5Awrite(attribute, H5T_NATIVE_INT64, &value), name);
  H5Aclose(attribute);
  H5Sclose(space);
}

// Replaces dataset `name` by one of `file_type` and shape `dims`, holding `data` (of `memory_type`).
void replace_dataset(hid_t root, const char* name, hid_t file_type, const std::vector<hsize_t>& dims,
                     hid_t memory_type, const void* data) {
  ok(H5Ldelete(root, name, H5P_DEFAULT), name);
  const hid_t space = ok(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "H5Screate_simple");
  const hid_t dataset = ok(H5Dcreate2(root, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), name);
  ok(H5Dwrite(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), name);
  H5Dclose(dataset);
  H5Sclose(space);
}

std::vector<int64_t> read_int64_dataset(hid_t root, const char* name) {
  const hid_t dataset = ok(H5Dopen2(root, name, H5P_DEFAULT), name);
  const hid_t space = ok(H5Dget_space(dataset), name);
  std::vector<int64_t> values(static_cast<size_t>(H5Sget_simple_extent_npoints(space)));
  ok(H5Dread(dataset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), name);
  H5Sclose(space);
  H5Dclose(dataset);
  return values;
}

// ---- the cases -----------------------------------------------------------------------------------
// Writes the valid split as 2 shards into a fresh directory, applies `edit` to shard 1, and returns
// ShardSet::open's error ("no error" when it opens).
std::string open_error_after(const std::function<void(hid_t root)>& edit_shard_1) {
  TempDir dir;
  const auto paths = valid_split().write(dir.path(), "train", 2);
  if (edit_shard_1) edit_file(paths[1], edit_shard_1);
  try {
    dml::ShardSet::open(dir.path(), "train");
  } catch (const dml::Error& e) {
    return e.what();
  }
  return "no error";
}

// Rows of shard 1 as written: classes 1 and 3, three images each.
constexpr hsize_t kShard1Rows = 6;

void expect_contains(const std::string& message, const std::vector<std::string>& parts) {
  for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

TEST(ShardValidation, ValidSetOpens) { EXPECT_EQ(open_error_after(nullptr), "no error"); }

TEST(ShardValidation, WrongFormatVersion) {
  const auto message = open_error_after([](hid_t root) { set_int_attribute(root, "format_version", 3); });
  expect_contains(message, {"train-00001-of-00002.h5", "format_version is 3", "this build reads 1", "dml_prepare"});
}

TEST(ShardValidation, WrongImageDtype) {
  const auto message = open_error_after([](hid_t root) {
    const std::vector<int16_t> images(kShard1Rows * kHeight * kWidth * kChannels, 0);
    replace_dataset(root, "images", H5T_STD_I16LE, {kShard1Rows, kHeight, kWidth, kChannels}, H5T_NATIVE_INT16,
                    images.data());
  });
  expect_contains(message, {"train-00001-of-00002.h5", "dataset images", "dtype", "uint8 [N,H,W,C]"});
}

TEST(ShardValidation, WrongLabelDtype) {
  const auto message = open_error_after([](hid_t root) {
    std::vector<int32_t> labels;
    for (int64_t label : read_int64_dataset(root, "labels")) labels.push_back(static_cast<int32_t>(label));
    replace_dataset(root, "labels", H5T_STD_I32LE, {labels.size()}, H5T_NATIVE_INT32, labels.data());
  });
  expect_contains(message, {"train-00001-of-00002.h5", "dataset labels", "dtype", "int64 [N]"});
}

TEST(ShardValidation, WrongRank) {
  const auto message = open_error_after([](hid_t root) {
    const std::vector<uint8_t> images(kShard1Rows * kHeight * kWidth * kChannels, 0);
    replace_dataset(root, "images", H5T_STD_U8LE, {kShard1Rows, kHeight, kWidth * kChannels}, H5T_NATIVE_UINT8,
                    images.data());
  });
  expect_contains(message, {"train-00001-of-00002.h5", "dataset images has rank 3"});
}

TEST(ShardValidation, LabelOutOfRange) {
  const auto message = open_error_after([](hid_t root) {
    auto labels = read_int64_dataset(root, "labels");
    labels[2] = kClasses;
    replace_dataset(root, "labels", H5T_STD_I64LE, {labels.size()}, H5T_NATIVE_INT64, labels.data());
  });
  expect_contains(message, {"train-00001-of-00002.h5", "dataset labels row 2 is 4", "0..3"});
}

TEST(ShardValidation, NDisagreesBetweenDatasets) {
  const auto message = open_error_after([](hid_t root) {
    auto ids = read_int64_dataset(root, "ids");
    ids.pop_back();
    replace_dataset(root, "ids", H5T_STD_I64LE, {ids.size()}, H5T_NATIVE_INT64, ids.data());
  });
  expect_contains(message, {"train-00001-of-00002.h5", "disagree on N", "ids 5"});
}

TEST(ShardValidation, MissingShard) {
  TempDir dir;
  const auto paths = valid_split().write(dir.path(), "train", 3);
  fs::remove(paths[1]);
  try {
    dml::ShardSet::open(dir.path(), "train");
    FAIL() << "expected an error";
  } catch (const dml::Error& e) {
    expect_contains(e.what(), {"train-00001-of-00003.h5", "is missing", "found 2 of 3"});
  }
}

// Within one file: the images' shape disagrees with the height attribute.
TEST(ShardValidation, ImageShapeDisagreesWithAttribute) {
  const auto message = open_error_after([](hid_t root) { set_int_attribute(root, "height", kHeight + 1); });
  expect_contains(message, {"train-00001-of-00002.h5", "dataset images has height 4", "attribute height is 5"});
}

TEST(ShardValidation, MissingAttribute) {
  const auto message = open_error_after([](hid_t root) { delete_attribute(root, "width"); });
  expect_contains(message, {"train-00001-of-00002.h5", "attribute width is missing"});
}

TEST(ShardValidation, ClassInTwoShards) {
  const auto message = open_error_after([](hid_t root) {
    auto labels = read_int64_dataset(root, "labels");
    labels[0] = 0;  // class 0 lives in shard 0
    replace_dataset(root, "labels", H5T_STD_I64LE, {labels.size()}, H5T_NATIVE_INT64, labels.data());
  });
  expect_contains(message, {"train-00001-of-00002.h5", "class 0 also appears in", "wholly in one shard"});
}

// Across files: shard 0 of one valid split next to shard 1 of another valid split that differs only
// in one attribute. Each file passes every within-file check; only the cross-shard agreement check
// (require_same in src/data/shard_set.cpp) can reject the pair.
struct CrossShardCase {
  const char* attribute;
  std::function<void(SyntheticSplit&)> change;
};

void PrintTo(const CrossShardCase& c, std::ostream* os) { *os << c.attribute; }

class CrossShardAttribute : public testing::TestWithParam<CrossShardCase> {};

TEST_P(CrossShardAttribute, DifferingAttributeIsRejectedByTheCrossShardCheck) {
  TempDir dir;
  const std::string first_dir = dir.file("first"), other_dir = dir.file("other"), mixed_dir = dir.file("mixed");
  const SyntheticSplit first = valid_split();
  SyntheticSplit other = valid_split();
  GetParam().change(other);
  const auto first_paths = first.write(first_dir, "train", 2);
  const auto other_paths = other.write(other_dir, "train", 2);
  // Both splits are valid on their own.
  ASSERT_NO_THROW(dml::ShardSet::open(first_dir, "train"));
  ASSERT_NO_THROW(dml::ShardSet::open(other_dir, "train"));

  fs::create_directories(mixed_dir);
  const std::string shard0 = dml::test::shard_path(mixed_dir, "train", 0, 2);
  const std::string shard1 = dml::test::shard_path(mixed_dir, "train", 1, 2);
  fs::copy_file(first_paths[0], shard0);
  fs::copy_file(other_paths[1], shard1);
  try {
    dml::ShardSet::open(mixed_dir, "train");
    FAIL() << "expected an error";
  } catch (const dml::Error& e) {
    expect_contains(e.what(), {shard1 + ": attribute " + GetParam().attribute + " differs from " + shard0,
                               "different preparations", "dml_prepare"});
  }
}

// The other split's one difference. Shard 1 holds classes 1 and 3 in every variant.
void rename_dataset(SyntheticSplit& s) { s.info.dataset = "other_toy"; }
void add_a_class(SyntheticSplit& s) {  // class 4, in shard 0; shard 1's labels are valid for 4 or 5 classes
  s.info.num_classes = kClasses + 1;
  s.info.class_names.push_back("c4");
  const std::vector<uint8_t> image(s.image(0), s.image(0) + s.image_bytes());
  for (int i = 0; i < 3; ++i) {
    s.ids.push_back(s.size());
    s.labels.push_back(kClasses);
    s.images.insert(s.images.end(), image.begin(), image.end());
  }
}
void rename_a_class(SyntheticSplit& s) { s.info.class_names[3] = "renamed"; }

INSTANTIATE_TEST_SUITE_P(ShardValidation, CrossShardAttribute,
                         testing::Values(CrossShardCase{"dataset", rename_dataset},
                                         CrossShardCase{"num_classes", add_a_class},
                                         CrossShardCase{"class_names", rename_a_class}),
                         [](const testing::TestParamInfo<CrossShardCase>& info) {
                           return std::string(info.param.attribute);
                         });

TEST(ShardValidation, NoShardsAtAll) {
  TempDir dir;
  try {
    dml::ShardSet::open(dir.path(), "train");
    FAIL() << "expected an error";
  } catch (const dml::Error& e) {
    expect_contains(e.what(), {"no shards of split 'train'", dir.path(), "dml_prepare"});
  }
}

}  // namespace
