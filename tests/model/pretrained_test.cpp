// Pretrained loading: torchvision ResNets (random weights, perturbed BN statistics) saved by
// Debian's python3-torchvision load by name and give torchvision's features; the converter
// script writes a loadable file; mismatches and missing files fail with clear messages.
// The Python side is in tests/model/python/ (torchvision_features.py, bad_state_dicts.py,
// not_a_state_dict.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "dml/model/embedding_net.h"
#include "dml/model/pretrained.h"
#include "dml/util/error.h"
#include "python_reference.h"
#include "test_support.h"

namespace dml {
namespace {

ModelOptions pretrained_options(const std::string& model, const std::string& path) {
  ModelOptions options;
  options.name = model;
  options.use_pretrained = true;
  options.pretrained_path = path;
  return options;
}

void expect_torchvision_features(const std::string& model, const test::TempDir& dir, const std::string& stem) {
  const ModelOptions options = pretrained_options(model, dir.file(stem + ".pt"));
  EmbeddingNet net = make_embedding_net(options, /*seed=*/5);
  net->eval();
  const auto io = test::load_tensor_dict(dir.file(stem + "_io.pt"));
  torch::NoGradGuard no_grad;
  const torch::Tensor features = net->features(io.at("input"));
  const torch::Tensor expected = io.at("features");
  ASSERT_EQ(features.sizes(), expected.sizes());
  const double scale = expected.abs().max().item<double>();
  const double diff = (features - expected).abs().max().item<double>();
  EXPECT_GT(scale, 0.05);  // not a comparison of two near-zero tensors
  EXPECT_LT(diff, 1e-5 * std::max(1.0, scale)) << model << ": max |diff| " << diff << ", max |ref| " << scale;
  // The buffers came from the file too (the perturbed running statistics).
  const auto file = test::load_tensor_dict(options.pretrained_path);
  EXPECT_TRUE(torch::equal(net->backbone().named_buffers()["layer1.0.bn1.running_var"],
                           file.at("layer1.0.bn1.running_var")));
  EXPECT_EQ(net->backbone().named_buffers()["bn1.num_batches_tracked"].item<int64_t>(), 17);
  // The head keeps its Xavier initialisation: U(-s, s), s = sqrt(2 / ((F + 128) / 2)), zero bias.
  const double s = std::sqrt(2.0 / ((net->feature_dim() + 128.0) / 2.0));
  EXPECT_TRUE(torch::all(net->head()->bias == 0).item<bool>());
  EXPECT_LE(net->head()->weight.abs().max().item<double>(), s);
  EXPECT_GT(net->head()->weight.abs().max().item<double>(), 0.9 * s);
}

TEST(TorchvisionReference, Resnet18ViaConverterMatchesTorchvisionFeatures) {
  test::TempDir dir;
  const std::string converter = std::string(DML_SOURCE_DIR) + "/launch/convert_torchvision.py";
  // Saved in torchvision's own format (an OrderedDict) and converted by the launch script.
  const auto r = test::run_reference_script("torchvision_features.py", {dir.path(), "resnet18", "--converter", converter});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_torchvision_features("resnet18_v1", dir, "resnet18");
  // The ImageNet stem's weights do not fit the small-input stem.
  ModelOptions small = pretrained_options("resnet18_v1", dir.file("resnet18.pt"));
  small.small_input_stem = true;
  EXPECT_THROW(make_embedding_net(small, 0), Error);
}

TEST(TorchvisionReference, Resnet50MatchesTorchvisionFeatures) {
  test::TempDir dir;
  // Saved directly as torch.save(dict(state_dict)).
  const auto r = test::run_reference_script("torchvision_features.py", {dir.path(), "resnet50"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_torchvision_features("resnet50_v1", dir, "resnet50");
}

TEST(Pretrained, MismatchedDictsNameTheEntries) {
  test::TempDir dir;
  const auto r = test::run_reference_script("bad_state_dicts.py", {dir.path()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto load_error = [&](const std::string& file) -> std::string {
    try {
      make_embedding_net(pretrained_options("resnet18_v1", dir.file(file)), 0);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  const std::string missing = load_error("bad_missing.pt");
  EXPECT_NE(missing.find("missing from the file: layer1.0.conv1.weight"), std::string::npos) << missing;
  const std::string extra = load_error("bad_extra.pt");
  EXPECT_NE(extra.find("not in the model: layer5.0.conv1.weight"), std::string::npos) << extra;
  EXPECT_EQ(extra.find("fc.weight"), std::string::npos) << extra;  // the classifier is ignored
  const std::string shape = load_error("bad_shape.pt");
  EXPECT_NE(shape.find("conv1.weight (file [64, 3, 3, 3], model [64, 3, 7, 7])"), std::string::npos) << shape;
}

TEST(Pretrained, MissingFilePrintsTheConvertCommand) {
  const std::string path = "/nonexistent/dml/resnet50_v1.pt";
  ModelOptions options;
  options.name = "resnet50_v1";
  options.use_pretrained = true;
  options.pretrained_path = path;
  try {
    make_embedding_net(options, 0);
    ADD_FAILURE() << "expected dml::Error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("python3 launch/convert_torchvision.py --model resnet50_v1 --output " + path),
              std::string::npos) << m;
  }
  options.name = "resnet50_v2";
  try {
    make_embedding_net(options, 0);
    ADD_FAILURE() << "expected dml::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("torchvision has no resnet50_v2"), std::string::npos) << e.what();
  }
}

TEST(Pretrained, NotADictOrOrderedDictFailsWithTheFix) {
  test::TempDir dir;
  const auto r = test::run_reference_script("not_a_state_dict.py", {dir.file("tensor.pt"), dir.file("ordered.pt")});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto message_for = [&](const std::string& file) -> std::string {
    ModelOptions options;
    options.name = "small_convnet";
    options.use_pretrained = true;
    options.pretrained_path = dir.file(file);
    try {
      make_embedding_net(options, 0);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  const std::string tensor_message = message_for("tensor.pt");
  EXPECT_NE(tensor_message.find("expected a dict name -> tensor"), std::string::npos) << tensor_message;
  const std::string ordered_message = message_for("ordered.pt");
  EXPECT_NE(ordered_message.find("torch.save(dict(model.state_dict()), path)"), std::string::npos)
      << ordered_message;
  EXPECT_EQ(ordered_message.find("frame #"), std::string::npos) << ordered_message;  // no C++ backtrace
}

TEST(Pretrained, DefaultPathHonoursEnvironment) {
  const char* old_dir = std::getenv("DML_PRETRAINED_DIR");
  const std::string saved_dir = old_dir ? old_dir : "";
  const char* old_cache = std::getenv("XDG_CACHE_HOME");
  const std::string saved_cache = old_cache ? old_cache : "";
  setenv("DML_PRETRAINED_DIR", "/weights", 1);
  EXPECT_EQ(default_pretrained_path("resnet50_v1"), "/weights/resnet50_v1.pt");
  unsetenv("DML_PRETRAINED_DIR");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(default_pretrained_path("resnet18_v1"), "/xdg/dml/pretrained/resnet18_v1.pt");
  unsetenv("XDG_CACHE_HOME");
  const std::string home = std::getenv("HOME") ? std::getenv("HOME") : ".";
  EXPECT_EQ(default_pretrained_path("resnet18_v1"), home + "/.cache/dml/pretrained/resnet18_v1.pt");
  if (old_dir) setenv("DML_PRETRAINED_DIR", saved_dir.c_str(), 1);
  if (old_cache) setenv("XDG_CACHE_HOME", saved_cache.c_str(), 1);
}

}  // namespace
}  // namespace dml
