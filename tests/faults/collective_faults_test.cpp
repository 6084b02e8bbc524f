// Hang protection: a rank that stops issuing collectives (here: rank 1 sleeps outside any collective,
// injected with DML_FAULT_INJECT) ends the job after --collective-timeout, with rank 0's line naming
// the rank, the step and the operation it was waiting in.
#include <gtest/gtest.h>

#include <regex>

#include "synthetic_shards.h"
#include "test_support.h"

namespace dml::test {
namespace {

TEST(CollectiveFaults, StuckRankEndsTheJobAfterTheCollectiveTimeout) {
  TempDir dir;
  write_synthetic_shards(dir.file("data"), 6, 4, 8, 16);
  const std::string prefix = dir.file("stuck");
  std::string run = mpirun_command(2) + " -x DML_NO_PROGRESS=1 -x DML_FAULT_INJECT=sleep:rank=1:step=3:seconds=60 " +
                    shell_quote(built_executable("dist_train"));
  const std::vector<std::string> args = {
       "--data-path", dir.file("data"), "--model", "small_convnet_nobn", "--crop-size", "14", "--embed-dim",
        "8", "--batch-size", "8", "--batch-k", "4", "--threads", "1", "--workers", "1", "--iterations-per-epoch", "100",
        "--epochs", "10", "--log-interval", "1", "--no-progress", "--collective-timeout", "3", "--save-model-prefix",
        prefix};
  for (const std::string& a : args) {
    run += " " + shell_quote(a);
  }
  const std::string script = "start=$(date +%s); " + run + " 2>&1; rc=$?; echo exit=$rc seconds=$(( $(date +%s) - start ))";
  const CommandResult r = run_command("timeout 170 bash -c " + shell_quote(script));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("exit=([0-9]+) seconds=([0-9]+)"))) << r.output;
  EXPECT_NE(std::stoi(m[1]), 0) << r.output;
  EXPECT_LT(std::stoi(m[2]), 50) << "the job outlived the stuck rank's sleep: the timeout did not end it\n" << r.output;
  EXPECT_TRUE(std::regex_search(
      r.output, std::regex(R"(\[dist\] error \(rank 0\): collective timeout: rank 0 waited more than 3 s )"
                           R"(\(--collective-timeout\) in [a-z_ ]+ at step 3;)")))
      << r.output;
}

}  // namespace
}  // namespace dml::test
