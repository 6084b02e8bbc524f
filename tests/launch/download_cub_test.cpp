// launch/download_cub.sh, run as users run it, against a tiny fake CUB_200_2011.tgz served over HTTP
// on 127.0.0.1 (an ephemeral port) by tests/launch/python/serve_and_run.py (Debian's
// python3-rangehttpserver, which answers Range requests), bounded in time and stopping by itself.
// The archive is built here: a CUB_200_2011/ directory in the layout dml_prepare reads (images
// written with OpenCV, as tests/data/prepare_cub_test.cpp does, plus train_test_split.txt and the
// official archive's top-level attributes.txt), packed with tar. Cases: a good archive (download,
// checksum, unpack, shards; a second run skips every step and asks the server nothing), a wrong
// checksum (one error line naming the file and both checksums, nothing unpacked), a download cut
// off halfway and resumed (the server sees a Range request for the rest; SHA-256 checked), and an
// archive without CUB_200_2011/ (nothing left under the final name).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "dml/data/shard_set.h"
#include "test_support.h"

namespace {
namespace fs = std::filesystem;
using dml::test::CommandResult;
using dml::test::TempDir;

constexpr int kServeTimeoutS = 40;  // per script run; the whole suite takes seconds

struct FakeImage {
  int id, cub_class;
  std::string file;
};
// Classes 1-100 go to train, 101-200 to test (the reference protocol).
const std::vector<FakeImage> kImages = {
    {1, 1, "001.Alpha/a1.jpg"}, {2, 101, "101.Kappa/k1.jpg"}, {3, 2, "002.Beta/b1.jpg"},
    {4, 1, "001.Alpha/a2.jpg"}, {5, 150, "150.Omega/o1.jpg"}, {6, 2, "002.Beta/b2.jpg"},
    {7, 101, "101.Kappa/k2.jpg"}, {8, 150, "150.Omega/o2.jpg"},
};

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string first_word(const std::string& text) { return text.substr(0, text.find_first_of(" \n")); }

CommandResult sh(const std::string& command) { return dml::test::run_command(command); }

class DownloadCub : public ::testing::Test {
 protected:
  // served/CUB_200_2011.tgz, from src/{CUB_200_2011/, attributes.txt}; `top` names the directory.
  void make_archive(const std::string& top = "CUB_200_2011") {
    const std::string src = dir_.file("src"), root = src + "/" + top;
    std::string images, labels, boxes, split;
    for (const auto& image : kImages) {
      const fs::path path = fs::path(root) / "images" / image.file;
      fs::create_directories(path.parent_path());
      cv::Mat pixels(24 + image.id, 32, CV_8UC3);
      for (int y = 0; y < pixels.rows; ++y) {
        for (int x = 0; x < pixels.cols * 3; ++x) pixels.ptr<uint8_t>(y)[x] = static_cast<uint8_t>((x * 5 + y * 3 + image.id * 31) % 256);
      }
      ASSERT_TRUE(cv::imwrite(path.string(), pixels));
      const std::string id = std::to_string(image.id);
      images += id + " " + image.file + "\n";
      labels += id + " " + std::to_string(image.cub_class) + "\n";
      boxes += id + " 2.0 3.0 20.0 18.0\n";
      split += id + (image.id % 2 == 0 ? " 1\n" : " 0\n");
    }
    write_text(root + "/images.txt", images);
    write_text(root + "/image_class_labels.txt", labels);
    write_text(root + "/bounding_boxes.txt", boxes);
    write_text(root + "/train_test_split.txt", split);
    write_text(root + "/classes.txt", "1 001.Alpha\n2 002.Beta\n101 101.Kappa\n150 150.Omega\n");
    write_text(src + "/attributes.txt", "1 has_bill_shape::curved_(up_or_down)\n");
    fs::create_directories(served_);
    const auto tar = sh("tar -czf " + dml::test::shell_quote(archive_) + " -C " + dml::test::shell_quote(src) + " " + top +
                        " attributes.txt");
    ASSERT_EQ(tar.exit_code, 0) << tar.output;
    md5_ = sum("md5sum", archive_);
    sha256_ = sum("sha256sum", archive_);
  }

  static std::string sum(const std::string& tool, const std::string& path) {
    const auto r = sh(tool + " " + dml::test::shell_quote(path));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return first_word(r.output);
  }

  // Runs launch/download_cub.sh with `env` (NAME=value words) and `args` while the archive is
  // served; CUB_DIR is data/CUB_200_2011 and OUTPUT_DIR shards/ under the temporary directory.
  CommandResult download(const std::vector<std::string>& env, const std::vector<std::string>& args = {}) {
    std::vector<std::string> command = {served_, "CUB_200_2011.tgz", std::to_string(kServeTimeoutS), "--", "env",
                                        "CUB_DIR=" + cub_dir_, "OUTPUT_DIR=" + shards_,
                                        "DML_BUILD_DIR=" + std::string(DML_BINARY_DIR), "SHARDS=1", "RESIZE=32",
                                        "THREADS=1"};
    command.insert(command.end(), env.begin(), env.end());
    command.push_back("bash");
    command.push_back(dml::test::source_path("launch/download_cub.sh"));
    command.insert(command.end(), args.begin(), args.end());
    return dml::test::run_python_file("tests/launch/python/serve_and_run.py", command);
  }

  // Entries of data/ (files and directories), sorted: no temporary unpack directory may remain.
  std::vector<std::string> data_entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_.file("data"))) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  static size_t count(const std::string& text, const std::string& part) {
    size_t n = 0;
    for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
    return n;
  }

  void SetUp() override {
    ASSERT_TRUE(fs::exists(dml::test::built_executable("dml_prepare"))) << "build the dml_prepare target first";
  }

  TempDir dir_;
  const std::string served_ = dir_.file("served"), archive_ = served_ + "/CUB_200_2011.tgz";
  const std::string cub_dir_ = dir_.file("data/CUB_200_2011"), local_archive_ = dir_.file("data/CUB_200_2011.tgz");
  const std::string shards_ = dir_.file("shards");
  std::string md5_, sha256_;
};

TEST_F(DownloadCub, GoodArchiveDownloadsUnpacksAndPrepares) {
  make_archive();
  const auto first = download({"CUB_MD5=" + md5_});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(count(first.output, "[server] GET /CUB_200_2011.tgz range=-"), 1u) << first.output;
  EXPECT_EQ(data_entries(), (std::vector<std::string>{"CUB_200_2011", "CUB_200_2011.tgz"}));
  EXPECT_EQ(sum("md5sum", local_archive_), md5_);
  EXPECT_TRUE(fs::is_regular_file(cub_dir_ + "/images/150.Omega/o2.jpg"));
  EXPECT_TRUE(fs::is_regular_file(cub_dir_ + "/train_test_split.txt"));
  EXPECT_FALSE(fs::exists(dir_.file("data/attributes.txt"))) << "only CUB_200_2011/ is kept";
  ASSERT_EQ(dml::test::list_files(shards_), (std::vector<std::string>{"test-00000-of-00001.h5", "train-00000-of-00001.h5"}))
      << first.output;
  const dml::ShardSet train = dml::ShardSet::open(shards_, "train");
  EXPECT_EQ(train.size(), 4);
  EXPECT_EQ(train.info().height, 32);
  EXPECT_EQ(dml::ShardSet::open(shards_, "test").info().class_names, (std::vector<std::string>{"101.Kappa", "150.Omega"}));

  // Everything done: a second run skips every step and asks the server nothing.
  const auto again = download({"CUB_MD5=" + md5_});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(count(again.output, "[server]"), 0u) << again.output;
  EXPECT_NE(again.output.find("already exists"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("already holds shards"), std::string::npos) << again.output;
}

TEST_F(DownloadCub, WrongChecksumFailsAndUnpacksNothing) {
  make_archive();
  const std::string wrong(32, '0');
  const auto result = download({"CUB_MD5=" + wrong});
  EXPECT_NE(result.exit_code, 0) << result.output;
  // One error line naming the file, both checksums and the fix.
  const size_t at = result.output.find("error: ");
  ASSERT_NE(at, std::string::npos) << result.output;
  const std::string line = result.output.substr(at, result.output.find('\n', at) - at);
  for (const std::string& part : {local_archive_, wrong, md5_, std::string("delete"), std::string("CUB_URL")}) {
    EXPECT_NE(line.find(part), std::string::npos) << part << " not in: " << line;
  }
  EXPECT_FALSE(fs::exists(cub_dir_));
  EXPECT_EQ(data_entries(), (std::vector<std::string>{"CUB_200_2011.tgz"}));
  EXPECT_FALSE(fs::exists(shards_));
}

TEST_F(DownloadCub, ResumesAHalfDownloadWithARangeRequest) {
  make_archive();
  const auto size = fs::file_size(archive_);
  const auto half = size / 2;
  fs::create_directories(dir_.file("data"));
  ASSERT_EQ(sh("head -c " + std::to_string(half) + " " + dml::test::shell_quote(archive_) + " > " +
               dml::test::shell_quote(local_archive_ + ".part"))
                .exit_code,
            0);
  ASSERT_EQ(fs::file_size(local_archive_ + ".part"), half);
  // SHA-256 given: it is checked instead of CUB_MD5 (left wrong here).
  const auto result = download({"CUB_MD5=" + std::string(32, '0'), "CUB_SHA256=" + sha256_}, {"--no-prepare"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // One request, for the rest of the file only.
  EXPECT_EQ(count(result.output, "[server] GET"), 1u) << result.output;
  EXPECT_EQ(count(result.output, "[server] GET /CUB_200_2011.tgz range=bytes=" + std::to_string(half) + "-\n"), 1u)
      << result.output;
  EXPECT_EQ(sum("sha256sum", local_archive_), sha256_);
  EXPECT_EQ(data_entries(), (std::vector<std::string>{"CUB_200_2011", "CUB_200_2011.tgz"}));
  EXPECT_TRUE(fs::is_regular_file(cub_dir_ + "/images.txt"));
  EXPECT_FALSE(fs::exists(shards_)) << "--no-prepare writes no shards";

  // DML_SKIP_PREPARE=1 does the same as --no-prepare.
  const auto skipped = download({"CUB_SHA256=" + sha256_, "DML_SKIP_PREPARE=1"});
  ASSERT_EQ(skipped.exit_code, 0) << skipped.output;
  EXPECT_FALSE(fs::exists(shards_));
}

TEST_F(DownloadCub, ArchiveWithoutCubDirectoryLeavesNothingUnpacked) {
  make_archive("not_cub");
  const auto result = download({"CUB_MD5=" + md5_});
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("holds no CUB_200_2011/images.txt"), std::string::npos) << result.output;
  EXPECT_EQ(data_entries(), (std::vector<std::string>{"CUB_200_2011.tgz"}));
  EXPECT_FALSE(fs::exists(shards_));
}

}  // namespace
