// The generic image-folder source: class split by halves or by lists, labels, ids and pixels.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dml/data/shard_set.h"
#include "dml/data/sources.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace {
namespace fs = std::filesystem;
using dml::test::TempDir;

// Classes a..d, two PNGs each (different sizes), plus a non-image file that must be ignored.
void make_folder(const std::string& root) {
  int seed = 0;
  for (const std::string cls : {"d_dog", "a_ant", "c_cat", "b_bee"}) {
    fs::create_directories(root + "/" + cls);
    for (int k = 0; k < 2; ++k, ++seed) {
      cv::Mat image(20 + seed, 30 - seed, CV_8UC3);
      for (int y = 0; y < image.rows; ++y)
        for (int x = 0; x < image.cols * 3; ++x) image.ptr<uint8_t>(y)[x] = static_cast<uint8_t>(x * 5 + y * 11 + seed * 37);
      ASSERT_TRUE(cv::imwrite(root + "/" + cls + "/img" + std::to_string(k) + ".png", image));
    }
    std::ofstream(root + "/" + cls + "/notes.txt") << "not an image";
  }
}

dml::PrepareSummary run(const std::vector<dml::SplitPlan>& plans, const std::string& out) {
  dml::PrepareOptions options;
  options.output_dir = out;
  options.threads = 2;
  options.progress = false;
  return dml::prepare_splits(plans, options);
}

TEST(PrepareFolder, HalvesBySortedClassNames) {
  TempDir dir;
  make_folder(dir.file("pets"));
  const auto plans = dml::plan_image_folder({dir.file("pets"), /*resize=*/16, {}, {}});
  const auto summary = run(plans, dir.file("out"));
  EXPECT_EQ(summary.images, 8);
  EXPECT_EQ(summary.classes, 4);
  const dml::ShardSet train = dml::ShardSet::open(dir.file("out"), "train");
  const dml::ShardSet test = dml::ShardSet::open(dir.file("out"), "test");
  EXPECT_EQ(train.info().dataset, "pets");
  EXPECT_EQ(train.info().class_names, (std::vector<std::string>{"a_ant", "b_bee"}));
  EXPECT_EQ(test.info().class_names, (std::vector<std::string>{"c_cat", "d_dog"}));
  // ids number images in sorted (class, file) order: a_ant 0,1; b_bee 2,3; c_cat 4,5; d_dog 6,7.
  EXPECT_EQ(train.ids(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(test.ids(), (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_EQ(test.labels(), (std::vector<int64_t>{0, 0, 1, 1}));

  // Pixels of c_cat/img1.png: OpenCV colour decode, BGR->RGB, INTER_LINEAR to 16x16.
  cv::Mat bgr = cv::imread(dir.file("pets") + "/c_cat/img1.png", cv::IMREAD_COLOR), rgb, small;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  cv::resize(rgb, small, cv::Size(16, 16), 0, 0, cv::INTER_LINEAR);
  std::vector<uint8_t> pixels(16 * 16 * 3);
  test.read_image(1, pixels.data());
  EXPECT_TRUE(pixels == std::vector<uint8_t>(small.data, small.data + 16 * 16 * 3));
}

TEST(PrepareFolder, ExplicitClassLists) {
  TempDir dir;
  make_folder(dir.file("pets"));
  const auto plans = dml::plan_image_folder({dir.file("pets"), 8, {"d_dog", "a_ant"}, {"c_cat"}});
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].info.class_names, (std::vector<std::string>{"d_dog", "a_ant"}));
  EXPECT_EQ(plans[0].labels, (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(plans[0].ids, (std::vector<int64_t>{6, 7, 0, 1}));
  EXPECT_EQ(plans[1].ids, (std::vector<int64_t>{4, 5}));
  try {
    dml::plan_image_folder({dir.file("pets"), 8, {"d_dog", "x_fox"}, {"c_cat"}});
    FAIL() << "expected an error";
  } catch (const dml::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--train-classes: class 'x_fox' is not a sub-folder"), std::string::npos) << e.what();
  }
}

TEST(PrepareFolder, EmptyClassAndMixedSizesFail) {
  TempDir dir;
  make_folder(dir.file("pets"));
  fs::create_directories(dir.file("pets") + "/e_eel");
  try {
    dml::plan_image_folder({dir.file("pets"), 16, {}, {}});
    FAIL() << "expected an error";
  } catch (const dml::Error& e) {
    EXPECT_NE(std::string(e.what()).find("class folder e_eel holds no images"), std::string::npos) << e.what();
  }
  fs::remove(dir.file("pets") + "/e_eel");
  // Without resize, images of different sizes cannot share a shard: the error names the fix.
  const auto plans = dml::plan_image_folder({dir.file("pets"), /*resize=*/0, {}, {}});
  try {
    run(plans, dir.file("out"));
    FAIL() << "expected an error";
  } catch (const dml::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--resize"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(dml::test::list_files(dir.file("out")).empty());
}

}  // namespace
