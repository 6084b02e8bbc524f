// The ResNet skeleton both families share: stem, four stages, head (see dml/model/resnet.h).
#include "dml/model/resnet.h"

#include <string>

#include "dml/util/error.h"
#include "model/resnet_family.h"
#include "model/conv_forward.h"
#include "model/resnet_layers.h"

namespace dml {

using detail::batch_norm;
using detail::BlockFactory;
using detail::conv2d_no_bias;
using detail::kBottleneckExpansion;

ResNetSpec resnet_spec(int depth) {
  switch (depth) {
    case 18: return {/*bottleneck=*/false, {2, 2, 2, 2}};
    case 34: return {/*bottleneck=*/false, {3, 4, 6, 3}};
    case 50: return {/*bottleneck=*/true, {3, 4, 6, 3}};
    case 101: return {/*bottleneck=*/true, {3, 4, 23, 3}};
    case 152: return {/*bottleneck=*/true, {3, 8, 36, 3}};
    default: break;
  }
  throw Error(str("ResNet depth ", depth, " is not supported; use 18, 34, 50, 101 or 152"));
}

namespace {

constexpr int64_t kStemChannels = 64;

int64_t stage_out_channels(size_t stage, bool bottleneck) {
  const int64_t width = kStemChannels << stage;  // 64, 128, 256, 512
  return bottleneck ? width * kBottleneckExpansion : width;
}

torch::nn::Conv2d stem_conv(int64_t in_channels, bool small_input_stem) {
  // The small-input stem keeps full resolution (no stride, no max-pool) for images <= 64 px.
  if (small_input_stem) return conv2d_no_bias(in_channels, kStemChannels, /*kernel=*/3, /*stride=*/1, /*padding=*/1);
  return conv2d_no_bias(in_channels, kStemChannels, /*kernel=*/7, /*stride=*/2, /*padding=*/3);
}

// One stage, as torchvision's and Gluon's _make_layer both build it: the first block carries the
// stride and the change of channels, the others keep both.
torch::nn::Sequential make_stage(BlockFactory block, int64_t in_channels, int64_t out_channels,
                                 int64_t blocks, int64_t stride) {
  torch::nn::Sequential stage;
  stage->push_back(block(in_channels, out_channels, stride));
  for (int64_t i = 1; i < blocks; ++i) stage->push_back(block(out_channels, out_channels, /*stride=*/1));
  return stage;
}

}  // namespace

// Registration order is the state-dict order (and the order of the reference initialisation's
// draws): input_bn, conv1, bn1, layer1..layer4, bn_final, as torchvision and the v2 reference.
ResNetImpl::ResNetImpl(ResNetVersion version, const ResNetOptions& options) : options_(options) {
  check(options.in_channels > 0, "ResNet: in_channels is ", options.in_channels, "; it must be positive");
  const ResNetSpec spec = resnet_spec(options.depth);
  const detail::ResNetFamily& family = detail::resnet_family(version);
  if (family.input_bn) {
    input_bn = register_module("input_bn", batch_norm(options.in_channels, /*affine=*/false));
  }
  conv1 = register_module("conv1", stem_conv(options.in_channels, options.small_input_stem));
  if (!options.small_input_stem || family.bn1_after_small_stem) {
    bn1 = register_module("bn1", batch_norm(kStemChannels));
  }
  const BlockFactory block = spec.bottleneck ? family.bottleneck : family.basic;
  int64_t channels = kStemChannels;
  for (size_t s = 0; s < layers_.size(); ++s) {
    const int64_t out = stage_out_channels(s, spec.bottleneck);
    const int64_t stride = s == 0 ? 1 : 2;  // layer1 follows the max-pool, which already halved
    layers_[s] = register_module("layer" + std::to_string(s + 1),
                                 make_stage(block, channels, out, spec.blocks[s], stride));
    channels = out;
  }
  if (family.final_bn) bn_final = register_module("bn_final", batch_norm(channels));
  feature_dim_ = channels;
}

torch::Tensor ResNetImpl::forward(torch::Tensor x) {
  if (input_bn) x = input_bn(x);
  x = detail::conv_forward(conv1, x);
  if (bn1) x = torch::relu(bn1(x));
  if (!options_.small_input_stem) x = torch::max_pool2d(x, /*kernel_size=*/3, /*stride=*/2, /*padding=*/1);
  for (auto& layer : layers_) x = layer->forward(x);
  if (bn_final) x = torch::relu(bn_final(x));
  return x;
}

}  // namespace dml
