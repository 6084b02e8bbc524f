// MPI suite (mpirun -np 2): the conformance bodies on every backend that runs here (single is a
// world of one on each rank; mpi spans both ranks), and the errors only a real world can produce.
#include "conformance.h"

namespace dml::test {
namespace {

class MpiConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { comm_ = make_communicator(parse_backend(GetParam())); }
  std::unique_ptr<Communicator> comm_;
};

TEST_P(MpiConformance, Identity) { check_identity(*comm_); }
TEST_P(MpiConformance, AllReduceSumsRankPlusOne) { check_all_reduce(*comm_); }
TEST_P(MpiConformance, AllGatherIsRankMajor) { check_all_gather(*comm_); }
TEST_P(MpiConformance, ReduceScatterKeepsOwnBlockOfTheSum) { check_reduce_scatter(*comm_); }
TEST_P(MpiConformance, BroadcastFromLastRank) { check_broadcast(*comm_); }
TEST_P(MpiConformance, RejectsUnsupportedDtype) { check_bad_dtype_rejected(*comm_); }
TEST_P(MpiConformance, AllGatherWithGradSendsGradientsHome) { check_all_gather_with_grad(*comm_); }
TEST_P(MpiConformance, GradientBucketsTinyBuckets) {
  check_gradient_buckets(*comm_, /*bucket_bytes=*/16, /*first_bucket_bytes=*/8, /*expected_buckets=*/4);
}
TEST_P(MpiConformance, GradientBucketsDefaultSizes) {
  check_gradient_buckets(*comm_, GradientBuckets::kDefaultBucketBytes, GradientBuckets::kDefaultFirstBucketBytes,
                         /*expected_buckets=*/2);
}

// nccl joins when it is built and this node has a GPU for each of the two ranks.
std::vector<std::string> backends_here() {
  std::vector<std::string> names = {"single", "mpi"};
  const auto built = built_backends();
  if (std::find(built.begin(), built.end(), "nccl") != built.end() && torch::cuda::device_count() >= 2) {
    names.push_back("nccl");
  }
  return names;
}
INSTANTIATE_TEST_SUITE_P(Backends, MpiConformance, ::testing::ValuesIn(backends_here()));

class MpiWorld : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = make_communicator(Backend::kMpi);
    ASSERT_EQ(comm_->world_size(), 2) << "run this suite with mpirun -np 2";
  }
  // After an expected error the ranks must still be in step: a collective works.
  void expect_still_in_step() {
    torch::Tensor t = torch::full({1}, comm_->rank() + 1.0);
    comm_->all_reduce_sum(t);
    EXPECT_EQ(t.item<float>(), 3.0f);
  }
  std::unique_ptr<Communicator> comm_;
};

TEST_F(MpiWorld, AutoPicksMpiUnderTheLauncher) {
  auto comm = make_communicator(Backend::kAuto);
  EXPECT_EQ(comm->backend_name(), "mpi");
  EXPECT_EQ(comm->world_size(), 2);
  EXPECT_EQ(comm->local_size(), 2);  // both ranks on this machine
  EXPECT_EQ(comm->local_rank(), comm->rank());
}

TEST_F(MpiWorld, UnevenAllGatherIsRejectedOnBothRanks) {
  torch::Tensor rows = torch::zeros({comm_->rank() + 1, 3});
  expect_error([&] { comm_->all_gather(rows); },
               "dist/mpi all_gather: shapes differ across ranks (rank 0 has Float [1, 3], rank 1 has Float [2, 3])");
  expect_still_in_step();
}

TEST_F(MpiWorld, IndivisibleReduceScatterIsRejectedOnBothRanks) {
  torch::Tensor rows = torch::zeros({3, 2});
  expect_error([&] { comm_->reduce_scatter_sum(rows); }, "first dimension 3 is not divisible by the world size 2");
  expect_still_in_step();
}

TEST_F(MpiWorld, MismatchedAllReduceAndRootsAreRejectedOnBothRanks) {
  torch::Tensor t = torch::zeros({comm_->rank() == 0 ? 4 : 5});
  expect_error([&] { comm_->all_reduce_sum(t); }, "rank 0 has Float [4], rank 1 has Float [5]");
  torch::Tensor u = torch::zeros({2});
  expect_error([&] { comm_->broadcast(u, comm_->rank()); }, "ranks passed different roots (rank 0: 0, rank 1: 1)");
  expect_still_in_step();
}

TEST_F(MpiWorld, CudaTensorOrBadDtypeOnOneRankFailsBothRanks) {
  // Only rank 1 passes a float16 tensor; rank 0 learns of it from the signature exchange.
  torch::Tensor t = torch::zeros({2}, comm_->rank() == 1 ? torch::kFloat16 : torch::kFloat32);
  expect_error([&] { comm_->all_gather(t); }, "rank 1: dtype Half is not supported");
  expect_still_in_step();
}

TEST_F(MpiWorld, LargeAllReduceAndGather) {
  // 1M elements: exercises real payloads rather than only tiny messages.
  torch::Tensor t = torch::arange(1 << 20, torch::kFloat64) * (comm_->rank() + 1);
  comm_->all_reduce_sum(t);
  EXPECT_TRUE(torch::equal(t, torch::arange(1 << 20, torch::kFloat64) * 3));
}

}  // namespace
}  // namespace dml::test
