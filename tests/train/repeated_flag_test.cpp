// Wrapper scripts pass "$@" after their own flags, so a flag given again by the user must win. Checked
// end to end: through dist_train alone and through launch/mpirun_local.sh with 2 ranks, the second
// --max-steps decides how many steps run.
#include <gtest/gtest.h>

#include <regex>

#include "train_fixture.h"

namespace dml::test {
namespace {

std::vector<std::string> tiny_run(const TempDir& dir) {
  return {"--data-path", dir.file("data"), "--model", "small_convnet_nobn", "--crop-size", "14", "--embed-dim", "8",
          "--batch-size", "8", "--batch-k", "4", "--threads", "1", "--workers", "1", "--no-progress",
          "--iterations-per-epoch", "50", "--epochs", "1", "--max-test-images", "16", "--recall-k", "1,4",
          "--save-model-prefix", dir.file("m"), "--max-steps", "5"};
}

int64_t steps_run(const std::string& output) {
  std::smatch m;
  if (!std::regex_search(output, m, std::regex("Steps run: (\\d+),"))) return -1;
  return std::stoll(m[1]);
}

TEST(RepeatedFlag, LastOneWinsInDistTrain) {
  TempDir dir;
  write_synthetic_shards(dir.file("data"), 4, 3, 6, 16);
  std::vector<std::string> args = tiny_run(dir);
  args.insert(args.end(), {"--max-steps", "2"});
  const CommandResult r = run_dist_train(args, /*ranks=*/0, /*timeout_s=*/180);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(steps_run(r.output), 2) << r.output;
  EXPECT_NE(r.output.find("max-steps = 2"), std::string::npos) << r.output;  // the resolved configuration
}

TEST(RepeatedFlag, LastOneWinsThroughMpirunLocal) {
  TempDir dir;
  write_synthetic_shards(dir.file("data"), 4, 3, 6, 16);
  std::string command = "DML_BUILD_DIR=" + shell_quote(DML_BINARY_DIR) + " timeout 180 bash " +
                        shell_quote(std::string(DML_SOURCE_DIR) + "/launch/mpirun_local.sh") + " 2";
  for (const auto& a : tiny_run(dir)) command += " " + shell_quote(a);
  command += " --max-steps 3";
  const CommandResult r = run_command(command);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(steps_run(r.output), 3) << r.output;
}

}  // namespace
}  // namespace dml::test
