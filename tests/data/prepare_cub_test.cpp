// dml_prepare --source cub on a small CUB-layout directory built here with OpenCV.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dml/data/shard_set.h"
#include "dml/data/sources.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace {
namespace fs = std::filesystem;
using dml::test::TempDir;

struct CubImageSpec {
  int id, cub_class;
  std::string file;  // relative to images/
  int width, height;
  bool gray;
  std::string box;  // "x y w h" as written in bounding_boxes.txt
};

// Interleaved classes and ids; boxes with fractions (truncated) and one reaching past the image.
const std::vector<CubImageSpec> kImages = {
    {1, 1, "001.Alpha/a1.jpg", 60, 45, false, "3.7 4.2 40.0 30.9"},
    {2, 101, "101.Kappa/k1.png", 64, 48, false, "10.0 5.0 30.0 35.0"},
    {3, 2, "002.Beta/b1.jpg", 50, 40, true, "0.0 0.0 50.0 40.0"},
    {4, 1, "001.Alpha/a2.png", 40, 30, false, "20.0 10.0 100.0 100.0"},
    {5, 150, "150.Omega/o1.jpg", 48, 36, true, "5.0 6.0 20.0 20.0"},
    {6, 2, "002.Beta/b2.jpg", 52, 44, false, "1.0 2.0 30.0 20.0"},
    {7, 101, "101.Kappa/k2.jpg", 44, 60, false, "0.5 0.5 43.0 59.0"},
    {8, 150, "150.Omega/o2.png", 36, 36, true, "2.0 2.0 30.0 30.0"},
};

cv::Mat synthetic_image(int id, int width, int height, bool gray) {
  cv::Mat image(height, width, gray ? CV_8UC1 : CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < image.channels(); ++c) {
        // Smooth gradients (JPEG-friendly) that differ per image and channel.
        image.ptr<uint8_t>(y)[x * image.channels() + c] =
            static_cast<uint8_t>((x * (3 + c) + y * (2 + id % 3) + id * 29 + c * 60) % 256);
      }
    }
  }
  return image;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A CUB_200_2011-like directory: images/, images.txt, image_class_labels.txt, bounding_boxes.txt,
// classes.txt (train_test_split.txt is deliberately absent: it is not used).
void make_cub(const std::string& root) {
  std::string images, labels, boxes;
  for (const auto& spec : kImages) {
    const fs::path path = fs::path(root) / "images" / spec.file;
    fs::create_directories(path.parent_path());
    ASSERT_TRUE(cv::imwrite(path.string(), synthetic_image(spec.id, spec.width, spec.height, spec.gray)));
    images += std::to_string(spec.id) + " " + spec.file + "\n";
    labels += std::to_string(spec.id) + " " + std::to_string(spec.cub_class) + "\n";
    boxes += std::to_string(spec.id) + " " + spec.box + "\n";
  }
  write_text(root + "/images.txt", images);
  write_text(root + "/image_class_labels.txt", labels);
  write_text(root + "/bounding_boxes.txt", boxes);
  write_text(root + "/classes.txt", "1 001.Alpha\n2 002.Beta\n101 101.Kappa\n150 150.Omega\n");
}

dml::test::CommandResult prepare(const std::string& args) {
  const std::string exe = dml::test::built_executable("dml_prepare");
  EXPECT_TRUE(fs::exists(exe)) << exe << " is not built; build the dml_prepare target";
  return dml::test::run_command(exe + " --source cub " + args);
}

// Independent expectation: OpenCV decode as colour, BGR->RGB, crop rows y:min(y+h,H),
// cols x:min(x+w,W) of the truncated box, INTER_LINEAR resize to 256x256.
std::vector<uint8_t> expected_pixels(const std::string& root, const CubImageSpec& spec, bool crop) {
  cv::Mat bgr = cv::imread(root + "/images/" + spec.file, cv::IMREAD_COLOR);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  if (crop) {
    std::istringstream in(spec.box);
    double x, y, w, h;
    in >> x >> y >> w >> h;
    const int xi = static_cast<int>(x), yi = static_cast<int>(y), wi = static_cast<int>(w), hi = static_cast<int>(h);
    rgb = rgb(cv::Range(yi, std::min(yi + hi, rgb.rows)), cv::Range(xi, std::min(xi + wi, rgb.cols))).clone();
  }
  cv::Mat out;
  cv::resize(rgb, out, cv::Size(256, 256), 0, 0, cv::INTER_LINEAR);
  return std::vector<uint8_t>(out.data, out.data + out.total() * 3);
}

TEST(PrepareCub, SplitsLabelsIdsAndCrops) {
  TempDir dir;
  const std::string root = dir.file("CUB_200_2011"), out = dir.file("shards");
  make_cub(root);
  const auto result = prepare("--input " + root + " --output " + out + " --shards 2 --threads 3");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("images/s"), std::string::npos) << result.output;
  EXPECT_EQ(dml::test::list_files(out),
            (std::vector<std::string>{"test-00000-of-00002.h5", "test-00001-of-00002.h5", "train-00000-of-00002.h5",
                                      "train-00001-of-00002.h5"}));

  const dml::ShardSet train = dml::ShardSet::open(out, "train");
  const dml::ShardSet test = dml::ShardSet::open(out, "test");
  EXPECT_EQ(train.info().class_names, (std::vector<std::string>{"001.Alpha", "002.Beta"}));
  EXPECT_EQ(test.info().class_names, (std::vector<std::string>{"101.Kappa", "150.Omega"}));
  EXPECT_EQ(train.info().dataset, "cub_200_2011");
  EXPECT_EQ(train.info().height, 256);
  EXPECT_EQ(train.info().channels, 3);
  EXPECT_EQ(train.info().resize, 256);
  EXPECT_TRUE(train.info().bbox_crop);
  // Shard 0 = label 0 (class 1: ids 1, 4), shard 1 = label 1 (class 2: ids 3, 6), in input order.
  EXPECT_EQ(train.ids(), (std::vector<int64_t>{1, 4, 3, 6}));
  EXPECT_EQ(train.labels(), (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(test.ids(), (std::vector<int64_t>{2, 7, 5, 8}));
  EXPECT_EQ(test.labels(), (std::vector<int64_t>{0, 0, 1, 1}));

  std::vector<uint8_t> pixels(256 * 256 * 3);
  for (const auto* set : {&train, &test}) {
    for (int64_t row = 0; row < set->size(); ++row) {
      const auto& spec = kImages[set->ids()[row] - 1];
      set->read_image(row, pixels.data());
      EXPECT_TRUE(pixels == expected_pixels(root, spec, /*crop=*/true)) << spec.file;
      if (spec.gray) {  // grayscale decoded as RGB: three equal channels
        for (size_t p = 0; p < pixels.size(); p += 3) ASSERT_TRUE(pixels[p] == pixels[p + 1] && pixels[p] == pixels[p + 2]);
      }
    }
  }

  // A second, fully independent check of one lossless image: torchvision decodes the PNG,
  // NumPy crops, torch's bilinear (half-pixel, no antialias) resizes; OpenCV's fixed-point
  // INTER_LINEAR may differ by one grey level (tests/data/python/cub_torchvision_check.py).
  const auto check = dml::test::run_python_file("tests/data/python/cub_torchvision_check.py", {root, out});
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST(PrepareCub, NoBboxCropResizesWholeImage) {
  TempDir dir;
  const std::string root = dir.file("cub"), out = dir.file("shards");
  make_cub(root);
  const auto result = prepare("--input " + root + " --output " + out + " --no-bbox-crop --threads 1");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const dml::ShardSet train = dml::ShardSet::open(out, "train");
  EXPECT_FALSE(train.info().bbox_crop);
  std::vector<uint8_t> pixels(256 * 256 * 3);
  for (int64_t row = 0; row < train.size(); ++row) {
    train.read_image(row, pixels.data());
    EXPECT_TRUE(pixels == expected_pixels(root, kImages[train.ids()[row] - 1], /*crop=*/false));
  }
}

// Bad inputs: each fails with a message naming the file and line or field, and leaves no file.
struct BadCase {
  std::string name;
  bool via_cli;  // run the dml_prepare executable (exit code) or the library in-process (faster)
  std::function<void(const std::string& root)> damage;
  std::vector<std::string> expected;
};

void replace_line(const std::string& path, int line, const std::string& text) {
  std::ifstream in(path);
  std::string all, current;
  for (int n = 1; std::getline(in, current); ++n) all += (n == line ? text : current) + "\n";
  write_text(path, all);
}

TEST(PrepareCub, BadInputsFailCleanly) {
  const std::vector<BadCase> cases = {
      {"ids out of line", true, [](const std::string& r) { replace_line(r + "/bounding_boxes.txt", 3, "4 0 0 10 10"); },
       {"bounding_boxes.txt line 3", "image id 4 does not line up with id 3", "images.txt line 3"}},
      {"line counts differ", false, [](const std::string& r) { replace_line(r + "/image_class_labels.txt", 8, ""); },
       {"image_class_labels.txt 7", "same images in the same order"}},
      {"missing image", false, [](const std::string& r) { fs::remove(r + "/images/002.Beta/b2.jpg"); },
       {"images.txt line 6", "b2.jpg does not exist"}},
      {"malformed number", false, [](const std::string& r) { replace_line(r + "/bounding_boxes.txt", 2, "2 1.0 2.0 abc 5"); },
       {"bounding_boxes.txt line 2", "width 'abc' is not a number"}},
      {"missing field", false, [](const std::string& r) { replace_line(r + "/images.txt", 5, "5"); },
       {"images.txt line 5", "expected '<id> <relative path>'"}},
      {"class outside 1..200", false, [](const std::string& r) { replace_line(r + "/image_class_labels.txt", 4, "4 201"); },
       {"image_class_labels.txt line 4", "class 201 is outside 1..200"}},
      {"box outside image", true, [](const std::string& r) { replace_line(r + "/bounding_boxes.txt", 7, "7 44.0 0 5 5"); },
       {"images.txt line 7", "bounding box x=44", "outside image", "k2.jpg", "--no-bbox-crop"}},
      {"truncated jpeg", true,
       [](const std::string& r) { fs::resize_file(r + "/images/150.Omega/o1.jpg", fs::file_size(r + "/images/150.Omega/o1.jpg") / 2); },
       {"images.txt line 5", "o1.jpg", "truncated"}},
      {"unreadable image", false, [](const std::string& r) { write_text(r + "/images/001.Alpha/a2.png", "this is not a png"); },
       {"images.txt line 4", "cannot decode image", "a2.png"}},
      {"empty class", false, [](const std::string& r) { write_text(r + "/classes.txt", "1 001.Alpha\n2 002.Beta\n3 003.Gamma\n101 101.Kappa\n150 150.Omega\n"); },
       {"classes.txt: class 3 (003.Gamma) has no images"}},
      {"missing index file", false, [](const std::string& r) { fs::remove(r + "/bounding_boxes.txt"); },
       {"bounding_boxes.txt not found", "--input"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    const std::string root = dir.file("cub"), out = dir.file("shards");
    make_cub(root);
    c.damage(root);
    std::string message;
    if (c.via_cli) {
      const auto result = prepare("--input " + root + " --output " + out + " --threads 2");
      EXPECT_NE(result.exit_code, 0);
      message = result.output;
    } else {
      try {
        dml::PrepareOptions options;
        options.output_dir = out;
        options.threads = 2;
        options.progress = false;
        dml::prepare_splits(dml::plan_cub({root, /*resize=*/256, /*bbox_crop=*/true}), options);
        ADD_FAILURE() << "no error";
      } catch (const dml::Error& e) {
        message = e.what();
      }
    }
    for (const auto& part : c.expected) EXPECT_NE(message.find(part), std::string::npos) << part << " not in " << message;
    EXPECT_TRUE(dml::test::list_files(out).empty()) << "files left in " << out;
  }
}

TEST(PrepareCub, RefusesOutputHoldingShardsUnlessOverwrite) {
  TempDir dir;
  const std::string root = dir.file("cub"), out = dir.file("shards");
  make_cub(root);
  ASSERT_EQ(prepare("--input " + root + " --output " + out + " --resize 32 --shards 2").exit_code, 0);
  const auto again = prepare("--input " + root + " --output " + out + " --resize 32");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("already holds shards"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("--overwrite"), std::string::npos) << again.output;
  EXPECT_EQ(dml::test::list_files(out).size(), 4u);
  const auto replaced = prepare("--input " + root + " --output " + out + " --resize 32 --overwrite");
  ASSERT_EQ(replaced.exit_code, 0) << replaced.output;
  EXPECT_EQ(dml::test::list_files(out),
            (std::vector<std::string>{"test-00000-of-00001.h5", "train-00000-of-00001.h5"}));
  EXPECT_EQ(dml::ShardSet::open(out, "train").info().height, 32);
}

}  // namespace
