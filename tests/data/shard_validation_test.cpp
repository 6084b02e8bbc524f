// ShardSet::open rejects malformed shard sets with a message naming the file, the field and the fix.
#include <gtest/gtest.h>

#include "dml/data/shard_set.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace {
using dml::test::TempDir;

// For each case name in argv[2:], writes a valid 2-shard split "train" (4 classes, 3 images each)
// with h5py into argv[1]/<case>, then applies the corruption the case names. One Python run
// serves every test (importing h5py is the slow part).
const char* kWriter = R"PY(
import os, sys, h5py, numpy as np
def write(out, case):
  H, W, C, K = 4, 3, 1, 4
  for shard in range(2):
      if case == "missing_shard" and shard == 1:
          continue
      classes = [c for c in range(K) if c % 2 == shard]
      n = 3 * len(classes)
      labels = np.array([c for c in classes for _ in range(3)], dtype=np.int64)
      images = np.zeros((n, H, W, C), dtype=np.uint8)
      ids = np.arange(n, dtype=np.int64) + 10 * shard
      if shard == 1:
          if case == "wrong_dtype": images = images.astype(np.int16)
          if case == "wrong_rank": images = images.reshape(n, H, W * C)
          if case == "label_range": labels[2] = K
          if case == "n_mismatch": ids = ids[:-1]
          if case == "labels_int32": labels = labels.astype(np.int32)
          if case == "class_in_two_shards": labels[0] = 0
      name = f"{out}/train-{shard:05d}-of-00002.h5" if case != "missing_shard" else f"{out}/train-{shard:05d}-of-00003.h5"
      with h5py.File(name, "w") as f:
          f.create_dataset("images", data=images)
          f.create_dataset("labels", data=labels)
          f.create_dataset("ids", data=ids)
          f.attrs["format_version"] = 3 if (case == "version" and shard == 1) else 1
          f.attrs["dataset"] = "toy"
          f.attrs["split"] = "train"
          f.attrs["num_classes"] = K
          f.attrs["height"], f.attrs["width"], f.attrs["channels"] = H, W, C
          if case == "height_differs" and shard == 1: f.attrs["height"] = H + 1
          if case == "no_width" and shard == 1: del f.attrs["width"]
          f.attrs["resize"] = 0
          f.attrs["bbox_crop"] = 0
  if case == "missing_shard":
      import shutil
      shutil.copy(f"{out}/train-00000-of-00003.h5", f"{out}/train-00002-of-00003.h5")
for case in sys.argv[2:]:
    os.makedirs(f"{sys.argv[1]}/{case}")
    write(f"{sys.argv[1]}/{case}", case)
)PY";

const std::vector<std::string> kCases = {"none", "version", "wrong_dtype", "labels_int32", "wrong_rank",
                                        "label_range", "n_mismatch", "missing_shard", "height_differs", "no_width",
                                        "class_in_two_shards"};

// The directory holding every case, written once per test run.
const std::string& cases_dir() {
  static TempDir dir;
  static const std::string python_output = [] {
    std::vector<std::string> args = {dir.path()};
    args.insert(args.end(), kCases.begin(), kCases.end());
    const auto result = dml::test::run_python(kWriter, args);
    return result.exit_code == 0 ? std::string() : "python failed: " + result.output;
  }();
  EXPECT_EQ(python_output, "");
  return dir.path();
}

std::string open_error(const std::string& case_name) {
  try {
    dml::ShardSet::open(cases_dir() + "/" + case_name, "train");
  } catch (const dml::Error& e) {
    return e.what();
  }
  return "no error";
}

void expect_contains(const std::string& message, const std::vector<std::string>& parts) {
  for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

TEST(ShardValidation, ValidSetOpens) { EXPECT_EQ(open_error("none"), "no error"); }

TEST(ShardValidation, WrongFormatVersion) {
  expect_contains(open_error("version"),
                  {"train-00001-of-00002.h5", "format_version is 3", "this build reads 1", "dml_prepare"});
}

TEST(ShardValidation, WrongImageDtype) {
  expect_contains(open_error("wrong_dtype"), {"train-00001-of-00002.h5", "dataset images", "dtype", "uint8 [N,H,W,C]"});
}

TEST(ShardValidation, WrongLabelDtype) {
  expect_contains(open_error("labels_int32"), {"train-00001-of-00002.h5", "dataset labels", "dtype", "int64 [N]"});
}

TEST(ShardValidation, WrongRank) {
  expect_contains(open_error("wrong_rank"), {"train-00001-of-00002.h5", "dataset images has rank 3"});
}

TEST(ShardValidation, LabelOutOfRange) {
  expect_contains(open_error("label_range"), {"train-00001-of-00002.h5", "dataset labels row 2 is 4", "0..3"});
}

TEST(ShardValidation, NDisagreesBetweenDatasets) {
  expect_contains(open_error("n_mismatch"), {"train-00001-of-00002.h5", "disagree on N", "ids 5"});
}

TEST(ShardValidation, MissingShard) {
  expect_contains(open_error("missing_shard"), {"train-00001-of-00003.h5", "is missing", "found 2 of 3"});
}

TEST(ShardValidation, AttributeDiffersBetweenShards) {
  expect_contains(open_error("height_differs"), {"train-00001-of-00002.h5", "dataset images has height 4", "attribute height is 5"});
}

TEST(ShardValidation, MissingAttribute) {
  expect_contains(open_error("no_width"), {"train-00001-of-00002.h5", "attribute width is missing"});
}

TEST(ShardValidation, ClassInTwoShards) {
  expect_contains(open_error("class_in_two_shards"), {"train-00001-of-00002.h5", "class 0 also appears in", "wholly in one shard"});
}

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
