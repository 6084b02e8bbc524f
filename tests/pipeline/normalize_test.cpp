#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dml/pipeline/normalize.h"
#include "dml/util/error.h"

namespace dml {
namespace {

TEST(NormalizeImages, MatchesHandComputationPerChannel) {
  auto images = torch::randint(0, 256, {2, 3, 4, 5}, torch::TensorOptions().dtype(torch::kUInt8));
  images[0][0][0][0] = 0;
  images[0][1][0][0] = 255;
  const at::Tensor out = normalize_images(images, torch::kCPU);
  ASSERT_EQ(out.scalar_type(), torch::kFloat32);
  ASSERT_EQ(out.sizes(), images.sizes());
  const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
  auto in_a = images.accessor<uint8_t, 4>();
  auto out_a = out.accessor<float, 4>();
  for (int b = 0; b < 2; ++b)
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 5; ++x)
          ASSERT_NEAR(out_a[b][c][y][x], (in_a[b][c][y][x] / 255.0 - mean[c]) / std[c], 2e-6);
  EXPECT_NEAR(out_a[0][0][0][0], -0.485 / 0.229, 1e-6);
  EXPECT_NEAR(out_a[0][1][0][0], (1 - 0.456) / 0.224, 1e-6);
}

TEST(NormalizeImages, OneChannelUsesFirstEntriesAndCustomValues) {
  auto images = torch::tensor({0, 51, 102, 255}, torch::kUInt8).view({1, 1, 2, 2});
  const at::Tensor out = normalize_images(images, torch::kCPU);
  const std::vector<double> raw = {0, 51, 102, 255};
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(out.flatten()[i].item<float>(), (raw[i] / 255.0 - 0.485) / 0.229, 1e-6);
  }
  const at::Tensor custom = normalize_images(images, torch::kCPU, {0.5}, {0.5});
  EXPECT_NEAR(custom.flatten()[3].item<float>(), 1.0, 1e-6);
  EXPECT_NEAR(custom.flatten()[0].item<float>(), -1.0, 1e-6);
}

TEST(NormalizeImages, RejectsWrongInputs) {
  EXPECT_THROW(normalize_images(torch::zeros({1, 3, 2, 2}), torch::kCPU), Error);                   // float
  EXPECT_THROW(normalize_images(torch::zeros({3, 2, 2}, torch::kUInt8), torch::kCPU), Error);        // 3-D
  EXPECT_THROW(normalize_images(torch::zeros({1, 2, 2, 2}, torch::kUInt8), torch::kCPU), Error);     // 2 channels
  EXPECT_THROW(normalize_images(torch::zeros({1, 3, 2, 2}, torch::kUInt8), torch::kCPU, {0.5}, {0.5}), Error);
  EXPECT_THROW(normalize_images(torch::zeros({1, 1, 2, 2}, torch::kUInt8), torch::kCPU, {0.5}, {0.0}), Error);
}

}  // namespace
}  // namespace dml
