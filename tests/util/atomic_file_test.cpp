#include <gtest/gtest.h>

#include <fstream>

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
