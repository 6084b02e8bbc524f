// launch/export_torchscript.py: a dml checkpoint becomes a TorchScript module that plain PyTorch
// loads with torch.jit.load and that computes dml's embeddings. dml's C++ EmbeddingNet (reference
// initialisation, perturbed BatchNorm statistics and biases) is written with save_inference_model
// (or save_checkpoint), its eval-mode forward of a fixed input is saved next to it, the tool runs
// with DML_TEST_PYTHON, and tests/app/python/torchscript_check.py runs the exported module (no dml
// code) and compares (1e-5, unit-length rows). Also: every model of the factory has the same
// names in launch/dml_models.py, and the tool's one-line errors, which write nothing.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include "dml/cli/options.h"
#include "dml/loss/margin_loss.h"
#include "dml/model/embedding_net.h"
#include "dml/model/model_factory.h"
#include "dml/optim/optimizer.h"
#include "dml/train/checkpoint.h"
#include "test_support.h"

namespace dml {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kEmbedDim = 16;
constexpr int64_t kBatch = 4;
constexpr int64_t kSide = 32;
constexpr const char* kTolerance = "1e-5";
constexpr const char* kTool = "launch/export_torchscript.py";

struct ModelCase {
  std::string model;
  bool small_input_stem = false;
  bool pass_flags = false;  // give --model/--embed-dim/--small-input-stem (they agree with the checkpoint)
};

std::string case_name(const ModelCase& c) { return c.model + (c.small_input_stem ? "_small_stem" : ""); }
void PrintTo(const ModelCase& c, std::ostream* os) { *os << case_name(c); }

ModelOptions model_options(const ModelCase& c) {
  ModelOptions m;
  m.name = c.model;
  m.embed_dim = kEmbedDim;
  m.small_input_stem = c.small_input_stem;
  return m;
}

// What dist_train records: describe_options of a run with this model and crop size.
RunSignature signature_of(const ModelCase& c) {
  TrainOptions o;
  o.config.model = model_options(c);
  o.crop_size = kSide;
  RunSignature s;
  s.model = c.model;
  s.embed_dim = kEmbedDim;
  s.batch_size = 8;
  s.batch_k = 4;
  s.total_replicas = 1;
  s.seed = 123;
  s.optimizer = "adam";
  s.iterations_per_epoch = 200;
  s.options_text = describe_options(o);
  return s;
}

// The reference initialisation, then BatchNorm affine parameters, running statistics and every
// conv/linear bias set to non-trivial values, so that eval mode is not the identity and a loader
// that skips any of them is caught.
EmbeddingNet perturbed_net(const ModelCase& c, uint64_t seed) {
  EmbeddingNet net = make_embedding_net(model_options(c), seed);
  torch::NoGradGuard no_grad;
  torch::manual_seed(static_cast<uint64_t>(seed));
  for (const auto& module : net->modules(/*include_self=*/false)) {
    if (auto* bn = module->as<torch::nn::BatchNorm2d>()) {
      if (bn->weight.defined()) bn->weight.uniform_(0.5, 1.5);
      if (bn->bias.defined()) bn->bias.normal_(0.0, 0.1);
      bn->running_mean.normal_(0.0, 0.1);
      bn->running_var.uniform_(0.5, 2.0);
      bn->num_batches_tracked.fill_(17);
    } else if (auto* conv = module->as<torch::nn::Conv2d>()) {
      if (conv->bias.defined()) conv->bias.normal_(0.0, 0.1);
    } else if (auto* linear = module->as<torch::nn::Linear>()) {
      if (linear->bias.defined()) linear->bias.normal_(0.0, 0.1);
    }
  }
  net->eval();
  return net;
}

// {"input": x, "output": net(x)} in eval mode, as torch::pickle_save (torch.load reads it).
void save_forward(EmbeddingNet& net, const std::string& path, uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed + 1000);
  const torch::Tensor x = torch::randn({kBatch, 3, kSide, kSide});
  const torch::Tensor y = net->forward(x);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{kBatch, kEmbedDim}));
  c10::Dict<std::string, torch::Tensor> io;
  io.insert("input", x);
  io.insert("output", y);
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(io));
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

test::CommandResult run_tool(const std::vector<std::string>& args) {
  std::string command = test::shell_quote(DML_TEST_PYTHON) + " " + test::shell_quote(test::source_path(kTool));
  for (const auto& a : args) command += " " + test::shell_quote(a);
  return test::run_command(command);
}

std::string number_after(const std::string& output, const std::string& key) {
  std::smatch m;
  if (std::regex_search(output, m, std::regex(key + " ([0-9.eE+-]+)"))) return m[1];
  return "?";
}

// Exports `checkpoint` to dir/model.ts and checks it against io with torchscript_check.py.
void export_and_check(const test::TempDir& dir, const std::string& checkpoint, const std::string& io,
                      const std::vector<std::string>& flags, const std::string& label) {
  std::vector<std::string> args = {"--checkpoint", checkpoint, "--out", dir.file("model.ts")};
  args.insert(args.end(), flags.begin(), flags.end());
  const auto exported = run_tool(args);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_NE(exported.output.find("wrote " + dir.file("model.ts")), std::string::npos) << exported.output;
  // Atomic write: only the renamed file is left, no temporary.
  for (const auto& f : test::list_files(dir.path())) EXPECT_EQ(f.find(".tmp"), std::string::npos) << f;

  const auto checked = test::run_python_file("tests/app/python/torchscript_check.py", {dir.file("model.ts"), io, kTolerance});
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
  EXPECT_NE(checked.output.find("\nok"), std::string::npos) << checked.output;
  const std::string diff = number_after(checked.output, "max_abs_diff");
  std::cout << "[ torchscript ] " << label << ": max |torchscript - dml| " << diff << ", max |norm - 1| "
            << number_after(checked.output, "max_norm_error") << "\n";
  ::testing::Test::RecordProperty("max_abs_diff_" + label, diff);
}

// The flags that agree with the checkpoint, when the case gives them.
std::vector<std::string> flags_of(const ModelCase& c) {
  if (!c.pass_flags) return {};
  return {"--model", c.model, "--embed-dim", std::to_string(kEmbedDim),
          c.small_input_stem ? "--small-input-stem" : "--no-small-input-stem"};
}

class TorchScriptExport : public ::testing::TestWithParam<ModelCase> {};

TEST_P(TorchScriptExport, ModuleMatchesDmlEvalForward) {
  const ModelCase c = GetParam();
  test::TempDir dir;
  EmbeddingNet net = perturbed_net(c, 7);
  save_inference_model(dir.file("m-best.pt"), net, signature_of(c));
  save_forward(net, dir.file("io.pt"), 7);
  export_and_check(dir, dir.file("m-best.pt"), dir.file("io.pt"), flags_of(c), case_name(c));
}

INSTANTIATE_TEST_SUITE_P(TorchScriptModels, TorchScriptExport,
                         ::testing::Values(ModelCase{"small_convnet", false, false},
                                           ModelCase{"small_convnet_nobn", false, false},
                                           ModelCase{"resnet18_v1", true, true},
                                           ModelCase{"resnet18_v2", true, true},
                                           // bottlenecks, the ImageNet stem (bn1, max-pool), flags not given
                                           ModelCase{"resnet50_v2", false, false}),
                         [](const ::testing::TestParamInfo<ModelCase>& info) { return case_name(info.param); });

// Every model of the factory with both stems (22 exports, about two minutes on two cores, checkpoints
// of up to ~240 MB in $TMPDIR one at a time): too slow for ctest, run by hand with
//   dml_test_app --gtest_also_run_disabled_tests --gtest_filter='TorchScriptExportEveryModel.*'
TEST(TorchScriptExportEveryModel, DISABLED_ModuleMatchesDmlEvalForward) {
  std::vector<ModelCase> cases;
  for (const auto& name : model_names()) {
    cases.push_back({name, false, true});
    if (name.rfind("resnet", 0) == 0) cases.push_back({name, true, true});
  }
  for (const ModelCase& c : cases) {
    SCOPED_TRACE(case_name(c));
    test::TempDir dir;
    EmbeddingNet net = perturbed_net(c, 5);
    save_inference_model(dir.file("m-best.pt"), net, signature_of(c));
    save_forward(net, dir.file("io.pt"), 5);
    export_and_check(dir, dir.file("m-best.pt"), dir.file("io.pt"), flags_of(c), case_name(c));
  }
}

// The full training checkpoint (<prefix>-last.pt: model, loss, optimisers, state) exports too.
TEST(TorchScriptExportLast, ReadsTheFullTrainingCheckpoint) {
  const ModelCase c{"small_convnet", false, false};
  test::TempDir dir;
  EmbeddingNet net = perturbed_net(c, 11);
  MarginLossOptions loss_options;
  loss_options.num_classes = 4;
  MarginLoss loss(loss_options);
  Optimizer net_optimizer({{"all", net->parameters(), 1.0}}, OptimizerOptions{});
  OptimizerOptions beta_options;
  beta_options.kind = OptimizerKind::kSgd;
  Optimizer beta_optimizer({{"beta", loss->parameters(), 1.0}}, beta_options);
  save_checkpoint(dir.file("m-last.pt"), net, loss, net_optimizer, &beta_optimizer, TrainingState{2, 400, 0.5},
                  signature_of(c));
  save_forward(net, dir.file("io.pt"), 11);
  export_and_check(dir, dir.file("m-last.pt"), dir.file("io.pt"), {}, "small_convnet_last");
}

// Names, order and shapes of every parameter and buffer, for every model of the factory and both
// stems, against launch/dml_models.py (no checkpoints written; the modules keep LibTorch's default
// initialisation, which does not matter for names).
TEST(TorchScriptExportNames, PythonModelsHaveDmlNamesForEveryModel) {
  test::TempDir dir;
  std::ofstream listing(dir.file("listing.txt"));
  auto shape_text = [](const torch::Tensor& t) {
    std::string s;
    for (int64_t d : t.sizes()) s += (s.empty() ? "" : "x") + std::to_string(d);
    return s.empty() ? std::string("-") : s;
  };
  int cases = 0;
  for (const auto& name : model_names()) {
    const bool resnet = name.rfind("resnet", 0) == 0;
    for (bool stem : {false, true}) {
      if (stem && !resnet) continue;  // the small convnets ignore the stem
      ModelOptions m;
      m.name = name;
      m.embed_dim = kEmbedDim;
      m.small_input_stem = stem;
      EmbeddingNet net(m);
      const std::string prefix = name + " " + (stem ? "1" : "0") + " " + std::to_string(kEmbedDim) + " ";
      for (const auto& p : net->named_parameters()) listing << prefix << "param " << p.key() << " " << shape_text(p.value()) << "\n";
      for (const auto& b : net->named_buffers()) listing << prefix << "buffer " << b.key() << " " << shape_text(b.value()) << "\n";
      ++cases;
    }
  }
  listing.close();
  ASSERT_EQ(cases, 22);
  const auto r = test::run_python_file("tests/app/python/torchscript_names.py", {dir.file("listing.txt")});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\nok"), std::string::npos) << r.output;
}

// The tool's errors: exit code 2, one line naming the problem, no output file.
class TorchScriptExportErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    net_ = perturbed_net(case_, 3);
    save_inference_model(dir_.file("m-best.pt"), net_, signature_of(case_));
  }

  // Runs the tool with `args` (plus --out dir/model.ts unless given) and checks the failure.
  void expect_refused(std::vector<std::string> args, const std::string& phrase) {
    if (std::find(args.begin(), args.end(), "--out") == args.end()) {
      args.push_back("--out");
      args.push_back(dir_.file("model.ts"));
    }
    const auto before = test::list_files(dir_.path());
    const auto r = run_tool(args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(r.output.rfind("export_torchscript.py: ", 0), 0u) << r.output;
    EXPECT_NE(r.output.find(phrase), std::string::npos) << "expected '" << phrase << "' in: " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "not one line: " << r.output;
    EXPECT_EQ(test::list_files(dir_.path()), before) << r.output;  // nothing written, no temporary left
  }

  const ModelCase case_{"small_convnet", false, false};
  test::TempDir dir_;
  EmbeddingNet net_{nullptr};
};

TEST_F(TorchScriptExportErrors, RefusesFilesThatAreNotDmlCheckpoints) {
  {
    std::ofstream text(dir_.file("notes.pt"));
    text << "not a checkpoint\n";
  }
  expect_refused({"--checkpoint", dir_.file("notes.pt")}, "not a dml checkpoint");
  // A LibTorch archive (TorchScript-loadable) without dml's fields.
  torch::serialize::OutputArchive other;
  other.write("weights", torch::ones({2}));
  other.save_to(dir_.file("other.pt"));
  expect_refused({"--checkpoint", dir_.file("other.pt")}, "'format_version' is missing; the file is not a dml checkpoint");
  expect_refused({"--checkpoint", dir_.file("missing.pt")}, "no such file");
}

TEST_F(TorchScriptExportErrors, RefusesAnotherFormatVersion) {
  torch::serialize::OutputArchive archive;
  archive.write("format_version", torch::tensor(kCheckpointFormatVersion + 1));
  archive.write("meta/model", c10::IValue(std::string("small_convnet")));
  archive.write("meta/embed_dim", torch::tensor(kEmbedDim));
  archive.write("meta/options", c10::IValue(signature_of(case_).options_text));
  torch::serialize::OutputArchive model;
  net_->save(model);
  archive.write("model", model);
  archive.save_to(dir_.file("v2.pt"));
  expect_refused({"--checkpoint", dir_.file("v2.pt")},
                 "format_version is " + std::to_string(kCheckpointFormatVersion + 1) + ", this tool reads 1");
}

TEST_F(TorchScriptExportErrors, RefusesFlagsThatDisagreeWithTheCheckpoint) {
  expect_refused({"--checkpoint", dir_.file("m-best.pt"), "--model", "small_convnet_nobn"},
                 "--model small_convnet_nobn disagrees with the checkpoint");
  expect_refused({"--checkpoint", dir_.file("m-best.pt"), "--embed-dim", "32"}, "--embed-dim 32 disagrees");
  expect_refused({"--checkpoint", dir_.file("m-best.pt"), "--small-input-stem"}, "--small-input-stem disagrees");
  expect_refused({"--checkpoint", dir_.file("m-best.pt"), "--model", "resnet19_v1"}, "unknown model name");
}

TEST_F(TorchScriptExportErrors, RefusesAnOutputDirectoryThatDoesNotExist) {
  const std::string out = dir_.file("missing/model.ts");
  expect_refused({"--checkpoint", dir_.file("m-best.pt"), "--out", out}, "does not exist");
  EXPECT_FALSE(fs::exists(dir_.file("missing")));
}

}  // namespace
}  // namespace dml
