// Plain suite for the building blocks on the single backend (and bucket layouts, which do not
// depend on the world size).
#include "conformance.h"
#include "dml/dist/scalar_collectives.h"

namespace dml::test {
namespace {

TEST(AllGatherWithGrad, SingleRankGradientIsTheWeight) {
  auto comm = make_communicator(Backend::kSingle);
  check_all_gather_with_grad(*comm);
}

// Layout with tiny buckets, derived by hand. Reverse order: p4 (float64, 32 B) alone closes the
// float64 first bucket (limit 8); p3 (48 B) closes the float32 first bucket; p2 (4 B) + p1 (60 B)
// reach the 16 B limit together; p0 (28 B) closes its own.
TEST(GradientBuckets, TinyBucketsFollowReverseOrderAndLimits) {
  auto comm = make_communicator(Backend::kSingle);
  std::vector<torch::Tensor> params = {torch::zeros({7}), torch::zeros({3, 5}), torch::zeros({1}),
                                       torch::zeros({2, 2, 3}), torch::zeros({4}, torch::kFloat64)};
  for (auto& p : params) p.requires_grad_(true);
  GradientBuckets buckets(params, *comm, /*bucket_bytes=*/16, /*first_bucket_bytes=*/8);
  ASSERT_EQ(buckets.num_buckets(), 4);
  EXPECT_EQ(buckets.bucket_parameter_indices(0), (std::vector<int64_t>{4}));
  EXPECT_EQ(buckets.bucket_parameter_indices(1), (std::vector<int64_t>{3}));
  EXPECT_EQ(buckets.bucket_parameter_indices(2), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(buckets.bucket_parameter_indices(3), (std::vector<int64_t>{0}));
  EXPECT_EQ(buckets.bucket_sizes_bytes(), (std::vector<int64_t>{32, 48, 64, 28}));
}

TEST(GradientBuckets, DefaultBucketsHoldManyParameters) {
  auto comm = make_communicator(Backend::kSingle);
  torch::nn::Sequential net(torch::nn::Linear(8, 16), torch::nn::ReLU(), torch::nn::Linear(16, 16),
                            torch::nn::ReLU(), torch::nn::Linear(16, 4));
  GradientBuckets buckets(net->parameters(), *comm);
  EXPECT_EQ(net->parameters().size(), 6u);
  EXPECT_EQ(buckets.num_buckets(), 1);
  EXPECT_EQ(buckets.bucket_sizes_bytes(), (std::vector<int64_t>{4 * (8 * 16 + 16 + 16 * 16 + 16 + 16 * 4 + 4)}));
}

// First bucket 1 KiB, then 4 KiB, five parameters of 2400 B: the first bucket closes after one
// parameter, the next ones after two (4800 B >= 4 KiB).
TEST(GradientBuckets, FirstBucketIsSmaller) {
  auto comm = make_communicator(Backend::kSingle);
  std::vector<torch::Tensor> params;
  for (int i = 0; i < 5; ++i) params.push_back(torch::zeros({600}).requires_grad_(true));  // 2400 B each
  GradientBuckets buckets(params, *comm, /*bucket_bytes=*/4096, /*first_bucket_bytes=*/1024);
  // p4 alone (2400 >= 1024); p3+p2 (4800 >= 4096); p1+p0 (4800).
  EXPECT_EQ(buckets.bucket_sizes_bytes(), (std::vector<int64_t>{2400, 4800, 4800}));
  EXPECT_EQ(buckets.bucket_parameter_indices(1), (std::vector<int64_t>{3, 2}));
}

TEST(GradientBuckets, SingleRankSynchronizeKeepsGradientsAndDefinesMissingOnes) {
  auto comm = make_communicator(Backend::kSingle);
  check_gradient_buckets(*comm, /*bucket_bytes=*/16, /*first_bucket_bytes=*/8, /*expected_buckets=*/4);
  check_gradient_buckets(*comm, GradientBuckets::kDefaultBucketBytes, GradientBuckets::kDefaultFirstBucketBytes,
                         /*expected_buckets=*/2);
}

TEST(GradientBuckets, RejectsParametersThatCannotTrain) {
  auto comm = make_communicator(Backend::kSingle);
  torch::Tensor frozen = torch::zeros({3});
  expect_error([&] { GradientBuckets b({frozen}, *comm); }, "does not require grad");
  torch::Tensor p = torch::zeros({3}).requires_grad_(true);
  expect_error([&] { GradientBuckets b({p, p}, *comm); }, "appears twice");
  expect_error([&] { GradientBuckets b({p}, *comm, 0); }, "must be positive");
}

TEST(ModuleSync, SingleRankCheckPassesAndBroadcastKeepsValues) {
  auto comm = make_communicator(Backend::kSingle);
  torch::nn::Linear linear(3, 2);
  const torch::Tensor before = linear->weight.detach().clone();
  check_same_module(*comm, *linear, "model");
  broadcast_module(*comm, *linear);
  EXPECT_TRUE(torch::equal(linear->weight, before));
}

TEST(ScalarCollectives, SingleRankIsIdentity) {
  auto comm = make_communicator(Backend::kSingle);
  EXPECT_TRUE(any_rank(*comm, true));
  EXPECT_FALSE(any_rank(*comm, false));
  EXPECT_EQ(all_reduce_sum_scalar(*comm, 2.5), 2.5);
}

}  // namespace
}  // namespace dml::test
