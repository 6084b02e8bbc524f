#include "model/resnet_family.h"

#include "model/resnet_blocks_v1.h"
#include "model/resnet_blocks_v2.h"

namespace dml::detail {

namespace {
template <typename Block>
torch::nn::AnyModule make_block(int64_t in_channels, int64_t out_channels, int64_t stride) {
  return torch::nn::AnyModule(Block(in_channels, out_channels, stride));
}
}  // namespace

const ResNetFamily& resnet_family(ResNetVersion version) {
  // torchvision: post-activation blocks end in BN (+ReLU), so the stem's conv is normalised by
  // bn1 in both stems and nothing follows layer4.
  static const ResNetFamily v1{make_block<BasicBlockV1>, make_block<BottleneckV1>,
                               /*input_bn=*/false, /*bn1_after_small_stem=*/true, /*final_bn=*/false};
  // Gluon ResNetV2: pre-activation blocks end in a conv, so the features need a final BN-ReLU;
  // the first block pre-activates the stem's output, so the thumbnail stem drops bn1; the raw
  // input is normalised by a BN without scale and shift.
  static const ResNetFamily v2{make_block<BasicBlockV2>, make_block<BottleneckV2>,
                               /*input_bn=*/true, /*bn1_after_small_stem=*/false, /*final_bn=*/true};
  return version == ResNetVersion::kV1 ? v1 : v2;
}

}  // namespace dml::detail
