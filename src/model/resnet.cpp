#include "dml/model/resnet.h"

#include "dml/util/error.h"
#include "model/resnet_blocks.h"

namespace dml {

using detail::batch_norm;
using detail::conv2d_no_bias;

ResNetSpec resnet_spec(int depth) {
  switch (depth) {
    case 18: return {false, {2, 2, 2, 2}};
    case 34: return {false, {3, 4, 6, 3}};
    case 50: return {true, {3, 4, 6, 3}};
    case 101: return {true, {3, 4, 23, 3}};
    case 152: return {true, {3, 8, 36, 3}};
    default: break;
  }
  throw Error(str("ResNet depth ", depth, " is not supported; use 18, 34, 50, 101 or 152"));
}

namespace {

void check_options(const ResNetOptions& options) {
  check(options.in_channels > 0, "ResNet: in_channels is ", options.in_channels, "; it must be positive");
}

// One stage of torchvision's _make_layer: the first block carries the stride and the projection.
template <typename Block>
torch::nn::Sequential v1_stage(int64_t& in_channels, int64_t planes, int64_t blocks, int64_t stride) {
  torch::nn::Sequential stage;
  for (int64_t i = 0; i < blocks; ++i) {
    stage->push_back(Block(in_channels, planes, i == 0 ? stride : 1));
    in_channels = planes * Block::Impl::kExpansion;
  }
  return stage;
}

// One stage of Gluon's ResNetV2._make_layer.
template <typename Block>
torch::nn::Sequential v2_stage(int64_t& in_channels, int64_t out_channels, int64_t blocks, int64_t stride) {
  torch::nn::Sequential stage;
  for (int64_t i = 0; i < blocks; ++i) {
    stage->push_back(Block(in_channels, out_channels, i == 0 ? stride : 1));
    in_channels = out_channels;
  }
  return stage;
}

}  // namespace

ResNetV1Impl::ResNetV1Impl(const ResNetOptions& options) : options_(options) {
  check_options(options);
  const ResNetSpec spec = resnet_spec(options.depth);
  if (options.small_input_stem) {
    conv1 = register_module("conv1", conv2d_no_bias(options.in_channels, 64, 3, 1, 1));
  } else {
    conv1 = register_module("conv1", conv2d_no_bias(options.in_channels, 64, 7, 2, 3));
  }
  bn1 = register_module("bn1", batch_norm(64));
  int64_t in = 64;
  const std::array<int64_t, 4> planes{64, 128, 256, 512};
  std::array<torch::nn::Sequential, 4> stages;
  for (size_t s = 0; s < 4; ++s) {
    const int64_t stride = s == 0 ? 1 : 2;
    stages[s] = spec.bottleneck ? v1_stage<detail::BottleneckV1>(in, planes[s], spec.blocks[s], stride)
                                : v1_stage<detail::BasicBlockV1>(in, planes[s], spec.blocks[s], stride);
  }
  layer1 = register_module("layer1", stages[0]);
  layer2 = register_module("layer2", stages[1]);
  layer3 = register_module("layer3", stages[2]);
  layer4 = register_module("layer4", stages[3]);
  feature_dim_ = in;
}

torch::Tensor ResNetV1Impl::forward(torch::Tensor x) {
  x = torch::relu(bn1(conv1(x)));
  if (!options_.small_input_stem) {
    x = torch::max_pool2d(x, /*kernel_size=*/3, /*stride=*/2, /*padding=*/1);
  }
  x = layer1->forward(x);
  x = layer2->forward(x);
  x = layer3->forward(x);
  return layer4->forward(x);
}

ResNetV2Impl::ResNetV2Impl(const ResNetOptions& options) : options_(options) {
  check_options(options);
  const ResNetSpec spec = resnet_spec(options.depth);
  // Gluon: BatchNorm(scale=False, center=False) on the raw input.
  input_bn = register_module("input_bn", batch_norm(options.in_channels, /*affine=*/false));
  if (options.small_input_stem) {
    conv1 = register_module("conv1", conv2d_no_bias(options.in_channels, 64, 3, 1, 1));
  } else {
    conv1 = register_module("conv1", conv2d_no_bias(options.in_channels, 64, 7, 2, 3));
    bn1 = register_module("bn1", batch_norm(64));
  }
  int64_t in = 64;
  const std::array<int64_t, 4> channels = spec.bottleneck ? std::array<int64_t, 4>{256, 512, 1024, 2048}
                                                          : std::array<int64_t, 4>{64, 128, 256, 512};
  std::array<torch::nn::Sequential, 4> stages;
  for (size_t s = 0; s < 4; ++s) {
    const int64_t stride = s == 0 ? 1 : 2;
    stages[s] = spec.bottleneck ? v2_stage<detail::BottleneckV2>(in, channels[s], spec.blocks[s], stride)
                                : v2_stage<detail::BasicBlockV2>(in, channels[s], spec.blocks[s], stride);
  }
  layer1 = register_module("layer1", stages[0]);
  layer2 = register_module("layer2", stages[1]);
  layer3 = register_module("layer3", stages[2]);
  layer4 = register_module("layer4", stages[3]);
  bn_final = register_module("bn_final", batch_norm(in));
  feature_dim_ = in;
}

torch::Tensor ResNetV2Impl::forward(torch::Tensor x) {
  x = conv1(input_bn(x));
  if (!options_.small_input_stem) {
    x = torch::relu(bn1(x));
    x = torch::max_pool2d(x, /*kernel_size=*/3, /*stride=*/2, /*padding=*/1);
  }
  x = layer1->forward(x);
  x = layer2->forward(x);
  x = layer3->forward(x);
  x = layer4->forward(x);
  return torch::relu(bn_final(x));
}

}  // namespace dml
