// A step whose loss or gradients are NaN (injected on one rank with DML_FAULT_INJECT=nan_loss, as a
// diverging run would produce): by default the job stops with the step and the last finite loss,
// and the checkpoints keep the last good state (a resume from them continues the uninterrupted
// run exactly); with --skip-nonfinite the step's update is skipped and counted in the log.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <limits>
#include <regex>

#include "dml/model/embedding_net.h"
#include "dml/model/model_factory.h"
#include "dml/train/checkpoint.h"
#include "dml/util/error.h"
#include "synthetic_shards.h"
#include "test_support.h"

namespace dml::test {
namespace {

constexpr int kRunTimeoutS = 240;

// ranks == 0: one process without a launcher; else under mpirun -np ranks. `env`: "-x NAME=value"
// exports for mpirun.
CommandResult run_train(const std::vector<std::string>& args, int ranks, const std::string& env = "") {
  std::string command = shell_quote(built_executable("dist_train"));
  for (const auto& a : args) command += " " + shell_quote(a);
  const std::string launcher = ranks > 0 ? mpirun_command(ranks) + " -x DML_NO_PROGRESS=1 " + env + " " : "DML_NO_PROGRESS=1 ";
  return run_command("timeout " + std::to_string(kRunTimeoutS) + " env " + launcher + command);
}

// step -> logged loss (null, for a step with no finite loss, is NaN), and step -> skipped_nonfinite.
struct TrainRecords {
  std::map<int64_t, double> loss;
  std::map<int64_t, int64_t> skipped;
};
TrainRecords read_records(const std::string& path) {
  TrainRecords records;
  std::ifstream in(path);
  const std::regex record(R"("step": ([0-9]+), "loss": ([^,]+),.*"skipped_nonfinite": ([0-9]+))");
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (!std::regex_search(line, m, record)) continue;
    const int64_t step = std::stoll(m[1]);
    records.loss[step] = m[2] == "null" ? std::nan("") : std::stod(m[2]);
    records.skipped[step] = std::stoll(m[3]);
  }
  return records;
}

// The model parameters (name -> tensor) stored in a checkpoint of args()'s model.
std::map<std::string, torch::Tensor> model_parameters(const std::string& path) {
  ModelOptions options;
  options.name = "small_convnet";
  options.embed_dim = 16;
  EmbeddingNet net = make_embedding_net(options, /*seed=*/999);
  load_inference_model(path, net);
  std::map<std::string, torch::Tensor> parameters;
  for (const auto& p : net->named_parameters()) parameters[p.key()] = p.value().detach().clone();
  return parameters;
}

class NonFinite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_synthetic_shards(dir_->file("data"), 8, 4, 10, 16);
    // The uninterrupted reference: 3 epochs of 4 steps on 2 ranks.
    const CommandResult r = run_train(args(dir_->file("reference"), 3), 2);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::vector<std::string> args(const std::string& prefix, int64_t epochs) {
    return {"--data-path", dir_->file("data"), "--model", "small_convnet", "--crop-size", "14", "--embed-dim", "16",
            "--batch-k", "4", "--batch-size", "8", "--iterations-per-epoch", "4", "--epochs", std::to_string(epochs),
            "--log-interval", "1", "--threads", "1", "--workers", "1", "--lr", "1e-3",
            "--save-model-prefix", prefix, "--metrics-file", prefix + ".jsonl"};
  }
  static TempDir* dir_;
};
TempDir* NonFinite::dir_ = nullptr;

TEST_F(NonFinite, NanLossOnOneRankStopsTheJobWithTheStepAndTheLastFiniteLoss) {
  const std::string prefix = dir_->file("nan");
  // Step index 5 is logged as step 6, in epoch 2: epoch 1's checkpoint (step 4) is the good state.
  const CommandResult r = run_train(args(prefix, 3), 2, "-x DML_FAULT_INJECT=nan_loss:rank=1:step=5");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "the job hung\n" << r.output;
  const TrainRecords reference = read_records(dir_->file("reference.jsonl"));
  ASSERT_EQ(reference.loss.count(5), 1u);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m,
                                std::regex(R"(\[train\] error \(rank 0\): step 6: the loss or the gradients are not )"
                                           R"(finite \(NaN or inf\); the last finite loss was ([0-9.e+-]+) at step 5\. )"
                                           R"(Stopped before the weights were saved: [^\n]*--skip-nonfinite)")))
      << r.output;
  EXPECT_NEAR(std::stod(m[1]), reference.loss.at(5), 1e-5 * std::abs(reference.loss.at(5))) << r.output;
  EXPECT_EQ(r.output.find("error (rank 1)"), std::string::npos) << "one message, from rank 0\n" << r.output;
  // Nothing non-finite reached the log, and no step after the bad one ran.
  const TrainRecords logged = read_records(prefix + ".jsonl");
  ASSERT_FALSE(logged.loss.empty());
  EXPECT_EQ(logged.loss.rbegin()->first, 5) << r.output;
  for (const auto& [step, loss] : logged.loss) EXPECT_EQ(loss, reference.loss.at(step)) << "step " << step;

  // -last.pt is epoch 1's good state: resuming from it (without the fault) continues the
  // uninterrupted run exactly.
  auto resume = args(prefix, 3);
  resume.insert(resume.end(), {"--resume", prefix + "-last.pt"});
  const CommandResult resumed = run_train(resume, 2);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("at epoch 1, step 4\n"), std::string::npos) << resumed.output;
  const TrainRecords after = read_records(prefix + ".jsonl");
  for (int64_t step = 5; step <= 12; ++step) {
    ASSERT_EQ(after.loss.count(step), 1u) << step;
    EXPECT_EQ(after.loss.at(step), reference.loss.at(step)) << "step " << step;
  }
}

TEST_F(NonFinite, NanLossOnTheFirstStepSaysThereWasNoFiniteLoss) {
  const std::string prefix = dir_->file("nan_first");
  const CommandResult r = run_train(args(prefix, 1), 2, "-x DML_FAULT_INJECT=nan_loss:rank=0:step=0");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("error (rank 0): step 1: the loss or the gradients are not finite (NaN or inf); the last "
                          "finite loss was never reached (it was the first step)"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(prefix + "-last.pt")) << "no checkpoint of a non-finite state";
  EXPECT_FALSE(std::filesystem::exists(prefix + "-best.pt"));
}

TEST_F(NonFinite, SkipNonfiniteSkipsTheUpdateCountsItAndGoesOn) {
  // The skipped step (the 6th, index 5) changes no weight: after it the parameters equal those of
  // a run that stopped after 5 steps.
  const std::string skipped = dir_->file("skip6"), five = dir_->file("five");
  auto a = args(skipped, 3);
  a.insert(a.end(), {"--skip-nonfinite", "--max-steps", "6"});
  const CommandResult r = run_train(a, 2, "-x DML_FAULT_INJECT=nan_loss:rank=1:step=5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step 6: the loss or the gradients are not finite (NaN or inf); skipped (--skip-nonfinite)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("| skipped 1 non-finite"), std::string::npos) << r.output;
  auto b = args(five, 3);
  b.insert(b.end(), {"--max-steps", "5"});
  ASSERT_EQ(run_train(b, 2).exit_code, 0);
  const auto after_skip = model_parameters(skipped + "-last.pt"), after_five = model_parameters(five + "-last.pt");
  ASSERT_FALSE(after_five.empty());
  for (const auto& [name, tensor] : after_five) EXPECT_TRUE(torch::equal(tensor, after_skip.at(name))) << name;
  const TrainRecords records = read_records(skipped + ".jsonl");
  ASSERT_EQ(records.loss.count(6), 1u);
  EXPECT_TRUE(std::isnan(records.loss.at(6))) << "the skipped step has no finite loss to log (null)";
  EXPECT_EQ(records.skipped.at(5), 0);
  EXPECT_EQ(records.skipped.at(6), 1);

  // A whole run with the same skipped step finishes, with finite losses after it.
  const std::string whole = dir_->file("skip_whole");
  auto c = args(whole, 3);
  c.push_back("--skip-nonfinite");
  const CommandResult rc = run_train(c, 2, "-x DML_FAULT_INJECT=nan_loss:rank=1:step=5");
  ASSERT_EQ(rc.exit_code, 0) << rc.output;
  const TrainRecords all = read_records(whole + ".jsonl");
  ASSERT_EQ(all.loss.size(), 12u);
  for (int64_t step = 7; step <= 12; ++step) {
    EXPECT_TRUE(std::isfinite(all.loss.at(step))) << step;
    EXPECT_EQ(all.skipped.at(step), 1) << step;
  }
  const TrainRecords reference = read_records(dir_->file("reference.jsonl"));
  for (int64_t step = 1; step <= 5; ++step) EXPECT_EQ(all.loss.at(step), reference.loss.at(step)) << step;
  EXPECT_NE(all.loss.at(7), reference.loss.at(7)) << "step 6's update was skipped, so step 7 differs";
}

// The last guard, in the checkpoint writer itself: a model with a NaN weight or BatchNorm statistic
// is never written, and the previous file stays as it was.
TEST(NonFiniteCheckpoint, WriterRefusesNonFiniteWeightsAndKeepsThePreviousFile) {
  TempDir dir;
  const std::string path = dir.file("m-best.pt");
  ModelOptions options;
  options.name = "small_convnet";
  options.embed_dim = 16;
  EmbeddingNet net = make_embedding_net(options, /*seed=*/1);
  RunSignature signature;
  signature.model = "small_convnet";
  signature.embed_dim = 16;
  save_inference_model(path, net, signature);
  const auto good = model_parameters(path);
  for (const char* kind : {"parameter", "buffer"}) {
    torch::Tensor target;
    std::string name;
    if (std::string(kind) == "parameter") {
      name = net->named_parameters().begin()->key();
      target = net->named_parameters()[name];
    } else {
      for (const auto& b : net->named_buffers()) {
        if (b.value().is_floating_point()) {
          name = b.key();
          target = b.value();
          break;
        }
      }
    }
    ASSERT_TRUE(target.defined()) << kind;
    const torch::Tensor saved = target.detach().clone();
    {
      torch::NoGradGuard no_grad;
      target.view(-1)[0] = std::numeric_limits<float>::infinity();
    }
    try {
      save_inference_model(path, net, signature);
      ADD_FAILURE() << "a model with a non-finite " << kind << " was written";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path + ": not written: model " + kind + " " + name + " "), std::string::npos)
          << e.what();
    }
    const auto kept = model_parameters(path);
    for (const auto& [n, tensor] : good) EXPECT_TRUE(torch::equal(tensor, kept.at(n))) << n;
    torch::NoGradGuard no_grad;
    target.copy_(saved);
  }
}

}  // namespace
}  // namespace dml::test
