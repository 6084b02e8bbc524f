// The pre-activation ResNet v2 (Gluon ResNetV2): parameter count from the architecture table,
// the affine-free input BN, and the forward pass against an independent PyTorch implementation
// written from Gluon's block definitions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>

#include "dml/model/embedding_net.h"
#include "dml/model/model_factory.h"
#include "test_support.h"

namespace dml {
namespace {

int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// Counts Gluon ResNetV2 parameters from its spec table (conv k*k*cin*cout, BN gamma+beta).
const char* kCountScript = R"PY(
import sys
specs = {18: ("basic", [2, 2, 2, 2], [64, 64, 128, 256, 512]),
         34: ("basic", [3, 4, 6, 3], [64, 64, 128, 256, 512]),
         50: ("bottle", [3, 4, 6, 3], [64, 256, 512, 1024, 2048]),
         101: ("bottle", [3, 4, 23, 3], [64, 256, 512, 1024, 2048]),
         152: ("bottle", [3, 8, 36, 3], [64, 256, 512, 1024, 2048])}
conv = lambda cin, cout, k: cin * cout * k * k
bn = lambda c: 2 * c
depth = int(sys.argv[1])
kind, layers, ch = specs[depth]
total = conv(3, ch[0], 7) + bn(ch[0])  # the input BN has no parameters
cin = ch[0]
for stage, n in enumerate(layers):
    cout = ch[stage + 1]
    for _ in range(n):
        if kind == "basic":
            total += bn(cin) + conv(cin, cout, 3) + bn(cout) + conv(cout, cout, 3)
        else:
            w = cout // 4
            total += bn(cin) + conv(cin, w, 1) + bn(w) + conv(w, w, 3) + bn(w) + conv(w, cout, 1)
        if cin != cout:
            total += conv(cin, cout, 1)
        cin = cout
total += bn(cin)
print(total)
)PY";

TEST(ResNetV2, ParameterCountsMatchArchitectureTable) {
  for (int depth : {18, 50}) {
    const auto r = test::run_python(kCountScript, {std::to_string(depth)});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto backbone = make_backbone("resnet" + std::to_string(depth) + "_v2", 3, false);
    EXPECT_EQ(parameter_count(*backbone), std::stoll(r.output)) << "depth " << depth;
  }
}

TEST(ResNetV2, InputBatchNormHasNoAffineParameters) {
  auto backbone = make_backbone("resnet50_v2", 3, false);
  const auto params = backbone->named_parameters();
  EXPECT_EQ(params.find("input_bn.weight"), nullptr);
  EXPECT_EQ(params.find("input_bn.bias"), nullptr);
  const auto buffers = backbone->named_buffers();
  ASSERT_NE(buffers.find("input_bn.running_mean"), nullptr);
  EXPECT_EQ(buffers["input_bn.running_mean"].sizes(), (std::vector<int64_t>{3}));
  // Convs have no bias anywhere; the first conv is 7x7/2 with 64 channels.
  for (const auto& item : params) EXPECT_EQ(item.key().find("conv") != std::string::npos &&
                                                item.key().find(".bias") != std::string::npos,
                                            false) << item.key();
  EXPECT_EQ(params["conv1.weight"].sizes(), (std::vector<int64_t>{64, 3, 7, 7}));
  // Input BN normalises with batch statistics in training: a constant shift of the input does
  // not change the output of the train-mode net.
  ModelOptions options;
  options.name = "resnet18_v2";
  options.small_input_stem = true;
  EmbeddingNet net = make_embedding_net(options, 4);
  net->train();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({4, 3, 16, 16});
  EXPECT_LT((net->forward(x) - net->forward(x + 3.0)).abs().max().item<float>(), 2e-4);
}

// An independent PyTorch implementation of Gluon's ResNetV2 (model_zoo/vision/resnet.py), with
// dml's names. Writes random weights (perturbed BN statistics), an input and the pooled
// features in eval mode for each (depth, small) in the list.
const char* kForwardScript = R"PY(
import os, sys
import torch
from torch import nn
import torch.nn.functional as F
out = sys.argv[1]
torch.manual_seed(99)

class Basic(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.bn1 = nn.BatchNorm2d(cin); s.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        s.bn2 = nn.BatchNorm2d(cout); s.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        s.downsample = nn.Conv2d(cin, cout, 1, stride, bias=False) if cin != cout else None
    def forward(s, x):
        residual = x
        x = F.relu(s.bn1(x))
        if s.downsample is not None: residual = s.downsample(x)
        x = s.conv1(x)
        x = s.conv2(F.relu(s.bn2(x)))
        return x + residual

class Bottle(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        w = cout // 4
        s.bn1 = nn.BatchNorm2d(cin); s.conv1 = nn.Conv2d(cin, w, 1, 1, bias=False)
        s.bn2 = nn.BatchNorm2d(w); s.conv2 = nn.Conv2d(w, w, 3, stride, 1, bias=False)
        s.bn3 = nn.BatchNorm2d(w); s.conv3 = nn.Conv2d(w, cout, 1, 1, bias=False)
        s.downsample = nn.Conv2d(cin, cout, 1, stride, bias=False) if cin != cout else None
    def forward(s, x):
        residual = x
        x = F.relu(s.bn1(x))
        if s.downsample is not None: residual = s.downsample(x)
        x = s.conv1(x)
        x = s.conv2(F.relu(s.bn2(x)))
        x = s.conv3(F.relu(s.bn3(x)))
        return x + residual

class ResNetV2(nn.Module):
    def __init__(s, depth, small):
        super().__init__()
        spec = {18: (Basic, [2, 2, 2, 2], [64, 64, 128, 256, 512]),
                50: (Bottle, [3, 4, 6, 3], [64, 256, 512, 1024, 2048])}
        block, layers, ch = spec[depth]
        s.small = small
        s.input_bn = nn.BatchNorm2d(3, affine=False)
        if small:
            s.conv1 = nn.Conv2d(3, ch[0], 3, 1, 1, bias=False)
        else:
            s.conv1 = nn.Conv2d(3, ch[0], 7, 2, 3, bias=False); s.bn1 = nn.BatchNorm2d(ch[0])
        cin = ch[0]
        for i, n in enumerate(layers):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, ch[i + 1], (1 if i == 0 else 2) if j == 0 else 1))
                cin = ch[i + 1]
            setattr(s, "layer%d" % (i + 1), nn.Sequential(*blocks))
        s.bn_final = nn.BatchNorm2d(cin)
    def forward(s, x):
        x = s.conv1(s.input_bn(x))
        if not s.small:
            x = F.max_pool2d(F.relu(s.bn1(x)), 3, 2, 1)
        x = s.layer4(s.layer3(s.layer2(s.layer1(x))))
        return F.relu(s.bn_final(x)).mean(dim=(2, 3))

for arg in sys.argv[2:]:
    depth, small = int(arg.split("_")[0]), arg.endswith("small")
    m = ResNetV2(depth, small)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                if mod.affine:
                    mod.weight.uniform_(0.5, 1.5); mod.bias.normal_(0.0, 0.1)
                mod.running_mean.normal_(0.0, 0.1); mod.running_var.uniform_(0.5, 2.0)
    m.eval()
    x = torch.randn(2, 3, 32 if small else 64, 32 if small else 64)
    with torch.no_grad():
        f = m(x)
    torch.save(dict(m.state_dict()), os.path.join(out, arg + ".pt"))
    torch.save({"input": x, "features": f}, os.path.join(out, arg + "_io.pt"))
print("ok")
)PY";

std::map<std::string, torch::Tensor> load_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : torch::pickle_load(bytes).toGenericDict()) out[e.key().toStringRef()] = e.value().toTensor();
  return out;
}

TEST(ResNetV2, ForwardMatchesIndependentGluonStyleImplementation) {
  test::TempDir dir;
  const std::vector<std::string> cases = {"18_full", "50_full", "50_small"};
  std::vector<std::string> args = {dir.path()};
  args.insert(args.end(), cases.begin(), cases.end());
  const auto r = test::run_python(kForwardScript, args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& c : cases) {
    ModelOptions options;
    options.name = "resnet" + c.substr(0, c.find('_')) + "_v2";
    options.small_input_stem = c.find("small") != std::string::npos;
    options.use_pretrained = true;
    options.pretrained_path = dir.file(c + ".pt");
    EmbeddingNet net = make_embedding_net(options, 0);
    net->eval();
    const auto io = load_dict(dir.file(c + "_io.pt"));
    torch::NoGradGuard no_grad;
    const torch::Tensor f = net->features(io.at("input"));
    const torch::Tensor expected = io.at("features");
    ASSERT_EQ(f.sizes(), expected.sizes()) << c;
    const double scale = expected.abs().max().item<double>();
    EXPECT_GT(scale, 0.05) << c;
    EXPECT_LT((f - expected).abs().max().item<double>(), 1e-5 * std::max(1.0, scale)) << c;
  }
}

}  // namespace
}  // namespace dml
