// Checkpoint writes that fail: a save prefix that cannot be written is refused before any training;
// a full disk (here a file-size limit, the same failed write) and a process killed in the middle of a
// write leave the previous checkpoint intact and loadable; every failure is one line, no stack trace.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "dml/model/embedding_net.h"
#include "dml/train/checkpoint.h"
#include "dml/util/atomic_file.h"
#include "synthetic_shards.h"
#include "test_support.h"

namespace dml::test {
namespace {

constexpr int kRunTimeoutS = 240;

std::string train_command(const std::vector<std::string>& args) {
  std::string command = "DML_NO_PROGRESS=1 " + shell_quote(built_executable("dist_train"));
  for (const auto& a : args) command += " " + shell_quote(a);
  return command;
}

// `shell_prefix` runs before dist_train in the same bash (e.g. "ulimit -f 1; ").
CommandResult run_train(const std::vector<std::string>& args, const std::string& shell_prefix = "") {
  return run_command("timeout " + std::to_string(kRunTimeoutS) + " bash -c " +
                     shell_quote(shell_prefix + "exec env " + train_command(args)) + " 2>&1");
}

std::vector<std::string> train_args(const std::string& data, const std::string& prefix) {
  return {"--data-path", data, "--model", "small_convnet", "--crop-size", "14", "--embed-dim", "16", "--batch-k", "4",
          "--batch-size", "8", "--iterations-per-epoch", "2", "--epochs", "1", "--log-interval", "1", "--threads", "1",
          "--workers", "1", "--save-model-prefix", prefix};
}

ModelOptions small_model() {
  ModelOptions m;
  m.name = "small_convnet";
  m.embed_dim = 16;
  m.in_channels = 3;  // dist_train's default, also for gray images
  return m;
}

std::map<std::string, torch::Tensor> parameters_of(EmbeddingNet& net) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : net->named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

// Loads `path` into a fresh model and returns its parameters.
std::map<std::string, torch::Tensor> load_parameters(const std::string& path) {
  EmbeddingNet net = make_embedding_net(small_model(), /*seed=*/999);
  load_inference_model(path, net);
  return parameters_of(net);
}

void expect_same(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void expect_no_stack_trace(const std::string& output) {
  EXPECT_EQ(output.find("Exception raised from"), std::string::npos) << output;
  EXPECT_EQ(output.find("frame #"), std::string::npos) << output;
  EXPECT_EQ(output.find("terminate called"), std::string::npos) << output;
}

void expect_no_training(const std::string& output) {
  EXPECT_EQ(output.find("[eval]"), std::string::npos) << "trained before the check:\n" << output;
  EXPECT_EQ(output.find("Steps run"), std::string::npos) << "trained before the check:\n" << output;
  EXPECT_EQ(output.find("[train] ranks"), std::string::npos) << "set up the run before the check:\n" << output;
}

class CheckpointWriteFaults : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_synthetic_shards(dir_->file("data"), 6, 4, 8, 16);
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
};
TempDir* CheckpointWriteFaults::dir_ = nullptr;

TEST_F(CheckpointWriteFaults, SavePrefixInMissingDirectoryIsRefusedBeforeTraining) {
  const std::string missing = dir_->file("no/such/dir");
  const CommandResult r = run_train(train_args(dir_->file("data"), missing + "/m"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << r.output;
  EXPECT_NE(r.output.find("--save-model-prefix: " + missing + "/m-last.pt: directory " + missing +
                          " does not exist; create it (mkdir -p " + missing + ")"),
            std::string::npos)
      << r.output;
  expect_no_training(r.output);
  expect_no_stack_trace(r.output);
}

TEST_F(CheckpointWriteFaults, SavePrefixThatIsAFileIsRefusedBeforeTraining) {
  const std::string file = dir_->file("plain-file");
  std::ofstream(file) << "x";
  const CommandResult r = run_train(train_args(dir_->file("data"), file + "/m"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--save-model-prefix: " + file + "/m-last.pt: " + file + " is not a directory"),
            std::string::npos)
      << r.output;
  expect_no_training(r.output);
  expect_no_stack_trace(r.output);
}

// A full disk, as a file-size limit: every write past it fails (EFBIG, SIGXFSZ ignored by dist_train).
TEST_F(CheckpointWriteFaults, FailedCheckpointWriteKeepsThePreviousCheckpoint) {
  const std::string prefix = dir_->file("full");
  CommandResult r = run_train(train_args(dir_->file("data"), prefix));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string last = prefix + "-last.pt", best = prefix + "-best.pt";
  ASSERT_TRUE(std::filesystem::exists(last) && std::filesystem::exists(best)) << r.output;
  const std::string last_bytes = read_all(last), best_bytes = read_all(best);
  const auto last_params = load_parameters(last);

  // Same run, other seed (other parameters), 1 KB file-size limit: the checkpoints cannot be written.
  std::vector<std::string> args = train_args(dir_->file("data"), prefix);
  args.insert(args.end(), {"--seed", "5"});
  r = run_train(args, "ulimit -f 1; ");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("File too large"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ulimit -f"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(prefix + "-"), std::string::npos) << r.output;
  expect_no_stack_trace(r.output);

  EXPECT_EQ(read_all(last), last_bytes);
  EXPECT_EQ(read_all(best), best_bytes);
  expect_same(load_parameters(last), last_params);
  EXPECT_NO_THROW(load_parameters(best));
  for (const auto& f : list_files(dir_->path())) {
    EXPECT_EQ(f.find("full-last.pt.tmp"), std::string::npos) << f;
    EXPECT_EQ(f.find("full-best.pt.tmp"), std::string::npos) << f;
  }
}

// SIGKILL in the middle of writing: the previous checkpoint is untouched and still loads, and what
// the killed writer leaves is a "<path>.tmp.<pid>" file that no reader of <path> opens.
TEST_F(CheckpointWriteFaults, ProcessKilledDuringWriteKeepsThePreviousCheckpoint) {
  TempDir dir;
  const std::string path = dir.file("m-best.pt");
  EmbeddingNet old_net = make_embedding_net(small_model(), 1);
  save_inference_model(path, old_net, RunSignature{"small_convnet", 16});
  const std::string old_bytes = read_all(path);
  EmbeddingNet new_net = make_embedding_net(small_model(), 2);
  save_inference_model(dir.file("new.pt"), new_net, RunSignature{"small_convnet", 16});
  const std::string new_bytes = read_all(dir.file("new.pt"));
  std::filesystem::remove(dir.file("new.pt"));
  ASSERT_NE(old_bytes, new_bytes);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      write_file_atomically(path, [&](const std::string& tmp) {
        CheckedFileWriter file(tmp, path);
        file.write(new_bytes.data(), new_bytes.size() / 2);
        ::raise(SIGKILL);
      });
    } catch (...) {
    }
    ::_exit(3);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

  EXPECT_EQ(read_all(path), old_bytes);
  expect_same(load_parameters(path), parameters_of(old_net));
  const auto files = list_files(dir.path());
  const std::string leftover = "m-best.pt.tmp." + std::to_string(child);
  EXPECT_EQ(files, (std::vector<std::string>{"m-best.pt", leftover}));
  EXPECT_EQ(std::filesystem::file_size(dir.file(leftover)), new_bytes.size() / 2);  // the half write, not renamed

  // The next save replaces the checkpoint normally.
  save_inference_model(path, new_net, RunSignature{"small_convnet", 16});
  expect_same(load_parameters(path), parameters_of(new_net));
}

}  // namespace
}  // namespace dml::test
