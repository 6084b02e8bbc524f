// Every ResNet depth (18, 34, 50, 101, 152) with both stems has exactly the reference's
// parameters and buffers, by name, shape and order, and the same parameter count: v1 against
// torchvision.models.resnetNN() (so torchvision state dicts load by name at every depth), v2
// against the independent PyTorch ResNetV2 (tests/model/python/resnet_v2_model.py). The
// references are listed by tests/model/python/state_dict_listing.py.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dml/model/model_factory.h"
#include "python_reference.h"
#include "test_support.h"

namespace dml {
namespace {

constexpr int kDepths[] = {18, 34, 50, 101, 152};

std::string shape_string(at::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// The backbone's tensors in state_dict_listing.py's format ("param NAME SHAPE", then "buffer ...").
std::vector<std::string> tensor_lines(torch::nn::Module& m) {
  std::vector<std::string> lines;
  for (const auto& p : m.named_parameters()) lines.push_back("param " + p.key() + " " + shape_string(p.value().sizes()));
  for (const auto& b : m.named_buffers()) lines.push_back("buffer " + b.key() + " " + shape_string(b.value().sizes()));
  return lines;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "" when equal; else the first differing line (a full dump of ~900 lines would bury it).
std::string first_difference(const std::vector<std::string>& dml, const std::vector<std::string>& reference) {
  for (size_t i = 0; i < std::min(dml.size(), reference.size()); ++i) {
    if (dml[i] != reference[i]) return "line " + std::to_string(i) + ": dml '" + dml[i] + "', reference '" + reference[i] + "'";
  }
  if (dml.size() != reference.size()) {
    return "dml has " + std::to_string(dml.size()) + " tensors, the reference " + std::to_string(reference.size());
  }
  return "";
}

// Lists the references of one family at every depth and stem, then compares each dml backbone.
void expect_every_depth_matches_reference(const std::string& family) {
  std::vector<std::string> cases;
  for (int depth : kDepths) {
    for (const char* stem : {"", "_small"}) cases.push_back("resnet" + std::to_string(depth) + "_" + family + stem);
  }
  test::TempDir dir;
  std::vector<std::string> args = {dir.path()};
  args.insert(args.end(), cases.begin(), cases.end());
  const auto r = test::run_reference_script("state_dict_listing.py", args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& c : cases) {
    const bool small = c.size() > 6 && c.compare(c.size() - 6, 6, "_small") == 0;
    const std::string name = small ? c.substr(0, c.size() - 6) : c;
    std::vector<std::string> reference = read_lines(dir.file(c + ".txt"));
    ASSERT_FALSE(reference.empty()) << c;
    // The first line is "count N": the parameter count, checked on its own for a clear message.
    std::istringstream first(reference.front());
    std::string word;
    int64_t count = -1;
    first >> word >> count;
    ASSERT_EQ(word, "count") << c;
    reference.erase(reference.begin());
    auto backbone = make_backbone(name, /*in_channels=*/3, /*small_input_stem=*/small);
    EXPECT_EQ(parameter_count(*backbone), count) << c;
    EXPECT_EQ(first_difference(tensor_lines(*backbone), reference), "") << c;
  }
}

TEST(ResNetV1Parameters, EveryDepthAndStemMatchesTorchvision) { expect_every_depth_matches_reference("v1"); }

TEST(ResNetV2Parameters, EveryDepthAndStemMatchesIndependentReference) {
  expect_every_depth_matches_reference("v2");
}

}  // namespace
}  // namespace dml
