#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "dml/util/atomic_file.h"
#include "dml/util/error.h"
#include "test_support.h"

namespace dml {
namespace {

TEST(AtomicFile, WritesThroughATemporaryAndRenames) {
  test::TempDir dir;
  const std::string path = dir.file("out.bin");
  std::string seen_tmp;
  write_file_atomically(path, [&](const std::string& tmp) {
    seen_tmp = tmp;
    EXPECT_NE(tmp, path);
    std::ofstream(tmp) << "complete";
    EXPECT_FALSE(std::ifstream(path).good());  // nothing visible under the final name yet
  });
  std::string content;
  std::ifstream(path) >> content;
  EXPECT_EQ(content, "complete");
  EXPECT_EQ(test::list_files(dir.path()), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFile, FailingWriterLeavesNeitherTemporaryNorTarget) {
  test::TempDir dir;
  const std::string path = dir.file("out.bin");
  EXPECT_THROW(write_file_atomically(path,
                                     [&](const std::string& tmp) {
                                       std::ofstream(tmp) << "half";
                                       throw Error("disk full");
                                     }),
               Error);
  EXPECT_TRUE(test::list_files(dir.path()).empty());
}

TEST(AtomicFile, FailingWriterKeepsThePreviousFile) {
  test::TempDir dir;
  const std::string path = dir.file("out.bin");
  std::ofstream(path) << "old";
  EXPECT_THROW(write_file_atomically(path, [&](const std::string&) { throw Error("boom"); }), Error);
  std::string content;
  std::ifstream(path) >> content;
  EXPECT_EQ(content, "old");
}

}  // namespace
}  // namespace dml

namespace dml {
namespace {

// /dev/full fails every write with ENOSPC, as a full disk does.
TEST(AtomicFile, FullDiskIsAnErrorNamingTheFileAndKeepsThePreviousFile) {
  test::TempDir dir;
  const std::string path = dir.file("out.bin");
  std::ofstream(path) << "old";
  try {
    write_file_atomically(path, [&](const std::string& tmp) {
      std::ofstream(tmp) << "partial";
      CheckedFileWriter file("/dev/full", path);
      const std::string data(4096, 'x');
      EXPECT_EQ(file.write(data.data(), data.size()), data.size());  // the error waits for finish()
      file.finish();
    });
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path + ": writing failed: No space left on device; free space"), std::string::npos) << message;
  }
  std::string content;
  std::ifstream(path) >> content;
  EXPECT_EQ(content, "old");
  EXPECT_EQ(test::list_files(dir.path()), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFile, CheckedWriterWritesEveryByte) {
  test::TempDir dir;
  const std::string path = dir.file("out.bin");
  const std::string data(1 << 20, 'y');
  write_file_atomically(path, [&](const std::string& tmp) {
    CheckedFileWriter file(tmp, path);
    file.write(data.data(), data.size());
    file.write("z", 1);
    file.finish();
  });
  std::ifstream in(path, std::ios::binary);
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, data + "z");
}

TEST(AtomicFile, FailedRenameIsAnErrorAndRemovesTheTemporary) {
  test::TempDir dir;
  const std::string path = dir.file("target");
  std::filesystem::create_directories(path + "/inside");  // rename of a file over a non-empty directory fails
  try {
    write_file_atomically(path, [&](const std::string& tmp) { std::ofstream(tmp) << "new"; });
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": renaming " + path + ".tmp."), std::string::npos) << e.what();
  }
  EXPECT_TRUE(test::list_files(dir.path()).empty());
  EXPECT_TRUE(std::filesystem::is_directory(path + "/inside"));
}

TEST(AtomicFile, CreatingInAMissingDirectoryIsAnError) {
  test::TempDir dir;
  EXPECT_THROW(CheckedFileWriter(dir.file("no/such/file"), "label"), Error);
}

TEST(AtomicFile, WriteProblemNamesAMissingDirectoryAndTheFix) {
  test::TempDir dir;
  EXPECT_EQ(file_write_problem(dir.file("m-last.pt")), "");
  EXPECT_TRUE(test::list_files(dir.path()).empty());  // the probe is removed
  const std::string missing = dir.file("a/b");
  EXPECT_EQ(file_write_problem(missing + "/m-last.pt"), missing + "/m-last.pt: directory " + missing +
                                                          " does not exist; create it (mkdir -p " + missing +
                                                          ") or choose a path in an existing directory");
  std::ofstream(dir.file("f")) << "x";
  EXPECT_NE(file_write_problem(dir.file("f") + "/m").find("is not a directory"), std::string::npos);
}

}  // namespace
}  // namespace dml
