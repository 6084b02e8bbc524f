#include "dml/model/small_convnet.h"

#include "dml/util/error.h"

namespace dml {

namespace {
torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride, bool bias) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, /*kernel_size=*/3).stride(stride).padding(1).bias(bias));
}
torch::nn::BatchNorm2d bn(int64_t channels) {
  return torch::nn::BatchNorm2d(torch::nn::BatchNormOptions(channels).eps(1e-5).momentum(0.1));
}
}  // namespace

SmallConvNetImpl::SmallConvNetImpl(int64_t in_channels, bool batch_norm)
    : in_channels_(in_channels), batch_norm_(batch_norm) {
  check(in_channels > 0, "small_convnet: in_channels is ", in_channels, "; it must be positive");
  // Without BN the convs carry a bias (BN's shift would otherwise be missing).
  conv1 = register_module("conv1", conv3x3(in_channels, 32, /*stride=*/1, /*bias=*/!batch_norm));
  conv2 = register_module("conv2", conv3x3(32, 64, /*stride=*/2, /*bias=*/!batch_norm));
  conv3 = register_module("conv3", conv3x3(64, 128, /*stride=*/2, /*bias=*/!batch_norm));
  if (batch_norm) {
    bn1 = register_module("bn1", bn(32));
    bn2 = register_module("bn2", bn(64));
    bn3 = register_module("bn3", bn(128));
  }
}

torch::Tensor SmallConvNetImpl::forward(torch::Tensor x) {
  if (batch_norm_) {
    x = torch::relu(bn1(conv1(x)));
    x = torch::relu(bn2(conv2(x)));
    return torch::relu(bn3(conv3(x)));
  }
  x = torch::relu(conv1(x));
  x = torch::relu(conv2(x));
  return torch::relu(conv3(x));
}

}  // namespace dml
