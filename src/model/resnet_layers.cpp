#include "model/resnet_layers.h"

namespace dml::detail {

torch::nn::Conv2d conv2d_no_bias(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

torch::nn::BatchNorm2d batch_norm(int64_t channels, bool affine) {
  // eps and momentum as torchvision and as Gluon (MXNet momentum 0.9 == torch momentum 0.1).
  return torch::nn::BatchNorm2d(
      torch::nn::BatchNormOptions(channels).eps(1e-5).momentum(0.1).affine(affine));
}

}  // namespace dml::detail
