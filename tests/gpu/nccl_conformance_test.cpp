// GPU suite, one process: the communicator conformance bodies (tests/dist/conformance.h) on the nccl
// backend as a world of one rank on cuda:0 (MPI starts as a singleton to bootstrap it), and what only
// the GPU path has: float16/bfloat16, host tensors refused, start_all_reduce_sum on the NCCL stream.
// Skips without an NCCL build or a CUDA device (gpu_test_support.h). The N-rank suite is
// nccl_conformance_mpi_test.cpp.
#include "../dist/conformance.h"
#include "gpu_test_support.h"

namespace dml::test {
namespace {

class NcclWorldOfOne : public ::testing::Test {
 protected:
  // One communicator for the suite (each NCCL communicator costs an ncclCommInitRank), released
  // before MPI is finalised at exit.
  static void TearDownTestSuite() { comm_.reset(); }
  void SetUp() override {
    DML_SKIP_UNLESS_GPUS(1);
    if (!comm_) comm_ = make_communicator(Backend::kNccl, /*cuda_device=*/0);
  }
  Communicator& comm() { return *comm_; }
  torch::Device device() const { return torch::Device(torch::kCUDA, 0); }
  static std::unique_ptr<Communicator> comm_;
};
std::unique_ptr<Communicator> NcclWorldOfOne::comm_;

TEST_F(NcclWorldOfOne, IsAWorldOfOneOnCuda0) {
  EXPECT_EQ(comm().backend_name(), "nccl");
  EXPECT_EQ(comm().rank(), 0);
  EXPECT_EQ(comm().world_size(), 1);
  EXPECT_EQ(comm().cuda_device(), 0);
  check_identity(comm());
}
TEST_F(NcclWorldOfOne, AllReduceIsIdentity) { check_all_reduce(comm()); }
TEST_F(NcclWorldOfOne, AllGatherIsIdentity) { check_all_gather(comm()); }
TEST_F(NcclWorldOfOne, ReduceScatterIsIdentity) { check_reduce_scatter(comm()); }
TEST_F(NcclWorldOfOne, BroadcastFromRootZero) { check_broadcast(comm()); }
TEST_F(NcclWorldOfOne, RejectsUnsupportedDtype) { check_bad_dtype_rejected(comm()); }
TEST_F(NcclWorldOfOne, AllGatherWithGradSendsGradientsHome) { check_all_gather_with_grad(comm()); }
TEST_F(NcclWorldOfOne, GradientBucketsTinyBuckets) {
  check_gradient_buckets(comm(), /*bucket_bytes=*/16, /*first_bucket_bytes=*/8, /*expected_buckets=*/4);
}
TEST_F(NcclWorldOfOne, GradientBucketsDefaultSizes) {
  check_gradient_buckets(comm(), GradientBuckets::kDefaultBucketBytes, GradientBuckets::kDefaultFirstBucketBytes,
                         /*expected_buckets=*/2);
}

TEST_F(NcclWorldOfOne, HalfAndBfloat16AreReducedOnTheGpu) {
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    torch::Tensor t = torch::full({5, 3}, 1.5, torch::dtype(dtype).device(device()));
    comm().all_reduce_sum(t);
    EXPECT_TRUE(torch::equal(t.cpu(), torch::full({5, 3}, 1.5, torch::dtype(dtype)))) << dtype;
  }
}

TEST_F(NcclWorldOfOne, HostTensorsAreRefusedNamingTheDevice) {
  torch::Tensor t = torch::ones({2});
  expect_error([&] { comm().all_reduce_sum(t); },
               "dist/nccl all_reduce_sum: rank 0: the tensor is on cpu but the nccl backend needs cuda:0 tensors");
  torch::Tensor ok = torch::ones({2}, device());
  comm().all_reduce_sum(ok);  // still usable afterwards
  EXPECT_EQ(ok.cpu()[1].item<float>(), 1.0f);
}

TEST_F(NcclWorldOfOne, StartedAllReduceIsOrderedWithTheCurrentStream) {
  // Written by kernels on the current stream just before the start: the NCCL stream must wait for them.
  torch::Tensor t = torch::zeros({1 << 20}, device());
  t.add_(torch::arange(1 << 20, torch::dtype(torch::kFloat32).device(device())));
  auto pending = comm().start_all_reduce_sum(t);
  pending->wait();
  t.mul_(2);  // ordered after the collective on the current stream
  EXPECT_TRUE(torch::equal(t.cpu(), torch::arange(1 << 20, torch::kFloat32) * 2));
  comm().barrier();
}

TEST_F(NcclWorldOfOne, NonContiguousViewIsWrittenBack) {
  torch::Tensor base = torch::arange(24, torch::dtype(torch::kFloat64).device(device())).view({4, 6});
  torch::Tensor view = base.slice(1, 1, 5).t();
  ASSERT_FALSE(view.is_contiguous());
  comm().all_reduce_sum(view);
  EXPECT_TRUE(torch::equal(base.cpu(), torch::arange(24, torch::kFloat64).view({4, 6})));
}

TEST(NcclFactory, AutoChoosesNcclForAGpuReplica) {
  DML_SKIP_UNLESS_GPUS(1);
  EXPECT_EQ(choose_backend(Backend::kAuto, 0), Backend::kNccl);
  auto comm = make_communicator(Backend::kAuto, 0);
  EXPECT_EQ(comm->backend_name(), "nccl");
  EXPECT_EQ(comm->cuda_device(), 0);
}

TEST(NcclFactory, ADeviceBeyondTheNodeIsRefused) {
  DML_SKIP_UNLESS_GPUS(1);
  const int devices = cuda_devices();
  expect_error([&] { make_communicator(Backend::kNccl, devices); },
               "was asked to bind cuda:" + std::to_string(devices) + " but sees only " + std::to_string(devices) + " GPUs");
}

}  // namespace
}  // namespace dml::test
