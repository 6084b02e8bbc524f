#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "dml/util/counter_rng.h"

namespace dml {
namespace {

// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
TEST(CounterRng, PhiloxMatchesRandom123KnownAnswers) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (std::array<uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
            (std::array<uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
            (std::array<uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(CounterRng, RangeVersionEqualsScalarVersion) {
  RngKey key{9, RngStream::kNegatives, 12};
  const torch::Tensor u = random_uniform_range(key, 140, 70, 4, torch::kCPU);
  ASSERT_EQ(u.sizes(), (std::vector<int64_t>{70, 4}));
  for (int64_t i = 0; i < 70; ++i) {
    for (int64_t d = 0; d < 4; ++d) {
      EXPECT_EQ(u[i][d].item<float>(), static_cast<float>(random_uniform(key, 140 + i, static_cast<uint32_t>(d))));
    }
  }
}

class CounterRngTensor : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(HostAndTensorOps, CounterRngTensor, ::testing::Values(false, true));

TEST_P(CounterRngTensor, TensorVersionEqualsScalarVersion) {
  RngKey key{123, RngStream::kNegatives, 77};
  auto indices = torch::tensor(std::vector<int64_t>{0, 1, 5, 69, 4000000000LL, (int64_t{1} << 40) + 3});
  auto u = GetParam() ? random_uniform_tensor_ops(key, indices, 4) : random_uniform_tensor(key, indices, 4);
  ASSERT_EQ(u.sizes(), (std::vector<int64_t>{6, 4}));
  ASSERT_EQ(u.scalar_type(), torch::kFloat32);
  for (int64_t i = 0; i < indices.size(0); ++i) {
    for (int64_t d = 0; d < 4; ++d) {
      EXPECT_EQ(u[i][d].item<float>(),
                static_cast<float>(random_uniform(key, indices[i].item<int64_t>(), static_cast<uint32_t>(d))))
          << "i=" << i << " d=" << d;
    }
  }
}

TEST(CounterRng, DifferentKeysGiveDifferentStreamsAndUniformMoments) {
  RngKey a{1, RngStream::kAugment, 0}, b{1, RngStream::kNegatives, 0}, c{2, RngStream::kAugment, 0};
  int same_ab = 0, same_ac = 0;
  double sum = 0, sum_sq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    same_ab += random_u32(a, i, 0) == random_u32(b, i, 0);
    same_ac += random_u32(a, i, 0) == random_u32(c, i, 0);
    const double u = random_uniform(a, i, 0);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum_sq += u * u;
  }
  EXPECT_LT(same_ab, 3);
  EXPECT_LT(same_ac, 3);
  const double mean = sum / n, var = sum_sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 0.01);         // sd of the mean ~ 0.002
  EXPECT_NEAR(var, 1.0 / 12.0, 0.003);  // uniform variance
}

TEST(CounterRng, RandomBelowCoversRangeEvenly) {
  RngKey key{9, RngStream::kClasses, 3};
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) counts[random_below(key, i, 0, 7)]++;
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);  // 4 sd
}

}  // namespace
}  // namespace dml
