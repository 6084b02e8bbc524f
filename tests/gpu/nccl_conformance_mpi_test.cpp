// GPU suite under mpirun -np N (ctest: N = 2; launch/gpu_check.sh also runs it on as many ranks as the
// node has GPUs): the conformance bodies (tests/dist/conformance.h) on the nccl backend, one GPU per rank
// (local rank r on cuda:r), the errors only a real world produces, and gradient buckets overlapped with
// backward on the GPU. Every rank skips alike when the node has fewer GPUs than ranks (NCCL needs one GPU
// per rank) or the build has no NCCL (gpu_test_support.h).
#include <mpi.h>

#include <set>

#include "../dist/conformance.h"
#include "dml/dist/gradient_buckets.h"
#include "gpu_test_support.h"

namespace dml::test {
namespace {

int mpi_world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);  // the MPI test main has initialised MPI
  return size;
}

class NcclWorld : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { comm_.reset(); }
  void SetUp() override {
    DML_SKIP_UNLESS_GPUS(mpi_world_size());
    if (!comm_) comm_ = make_communicator(Backend::kNccl);  // binds local_rank % devices
  }
  Communicator& comm() { return *comm_; }
  torch::Device device() { return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(comm_->cuda_device())); }
  // After an expected error every rank must still be in step: a collective works.
  void expect_still_in_step() {
    torch::Tensor t = torch::full({1}, comm().rank() + 1.0, device());
    comm().all_reduce_sum(t);
    const int64_t W = comm().world_size();
    EXPECT_EQ(t.cpu().item<float>(), static_cast<float>(W * (W + 1) / 2));
  }
  static std::unique_ptr<Communicator> comm_;
};
std::unique_ptr<Communicator> NcclWorld::comm_;

TEST_F(NcclWorld, OneGpuPerRank) {
  EXPECT_EQ(comm().backend_name(), "nccl");
  EXPECT_EQ(comm().world_size(), mpi_world_size());
  EXPECT_EQ(comm().local_size(), comm().world_size());  // every rank on this node
  EXPECT_EQ(comm().cuda_device(), comm().local_rank());
  check_identity(comm());
  // No two ranks share a GPU.
  torch::Tensor mine = torch::tensor({static_cast<int64_t>(comm().cuda_device())}, torch::dtype(torch::kInt64).device(device()));
  torch::Tensor all = comm().all_gather(mine).cpu();
  std::set<int64_t> distinct;
  for (int64_t i = 0; i < all.numel(); ++i) distinct.insert(all[i].item<int64_t>());
  EXPECT_EQ(static_cast<int>(distinct.size()), comm().world_size()) << all;
}
TEST_F(NcclWorld, AllReduceSumsRankPlusOne) { check_all_reduce(comm()); }
TEST_F(NcclWorld, AllGatherIsRankMajor) { check_all_gather(comm()); }
TEST_F(NcclWorld, ReduceScatterKeepsOwnBlockOfTheSum) { check_reduce_scatter(comm()); }
TEST_F(NcclWorld, BroadcastFromLastRank) { check_broadcast(comm()); }
TEST_F(NcclWorld, RejectsUnsupportedDtype) { check_bad_dtype_rejected(comm()); }
TEST_F(NcclWorld, AllGatherWithGradSendsGradientsHome) { check_all_gather_with_grad(comm()); }
TEST_F(NcclWorld, GradientBucketsTinyBuckets) {
  check_gradient_buckets(comm(), /*bucket_bytes=*/16, /*first_bucket_bytes=*/8, /*expected_buckets=*/4);
}
TEST_F(NcclWorld, GradientBucketsDefaultSizes) {
  check_gradient_buckets(comm(), GradientBuckets::kDefaultBucketBytes, GradientBuckets::kDefaultFirstBucketBytes,
                         /*expected_buckets=*/2);
}

TEST_F(NcclWorld, HalfAndBfloat16Sums) {
  const int64_t W = comm().world_size();
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    torch::Tensor t = torch::full({7}, static_cast<double>(comm().rank() + 1), torch::dtype(dtype).device(device()));
    comm().all_reduce_sum(t);  // W(W+1)/2 <= 36 for 8 ranks: exact in both formats
    EXPECT_TRUE(torch::equal(t.cpu(), torch::full({7}, static_cast<double>(W * (W + 1) / 2), torch::dtype(dtype)))) << dtype;
  }
}

TEST_F(NcclWorld, LargeAllReduceAndStartedAllReduce) {
  const int64_t W = comm().world_size();
  const float expected = static_cast<float>(W * (W + 1) / 2);
  torch::Tensor big = torch::full({16 << 20}, comm().rank() + 1.0, device());  // 64 MiB of float32
  comm().all_reduce_sum(big);
  EXPECT_TRUE(torch::all(big == expected).item<bool>());
  torch::Tensor t = torch::full({1 << 20}, comm().rank() + 1.0, device());
  auto pending = comm().start_all_reduce_sum(t);
  pending->wait();
  EXPECT_TRUE(torch::all(t == expected).item<bool>());
  comm().barrier();
}

TEST_F(NcclWorld, UnevenAllGatherIsRejectedOnEveryRank) {
  if (comm().world_size() < 2) GTEST_SKIP() << "needs 2 ranks";
  torch::Tensor rows = torch::zeros({comm().rank() + 1, 3}, device());
  expect_error([&] { comm().all_gather(rows); },
               "dist/nccl all_gather: shapes differ across ranks (rank 0 has Float [1, 3], rank 1 has Float [2, 3]");
  expect_still_in_step();
}

TEST_F(NcclWorld, HostTensorOnOneRankFailsEveryRank) {
  if (comm().world_size() < 2) GTEST_SKIP() << "needs 2 ranks";
  torch::Tensor t = comm().rank() == 1 ? torch::zeros({2}) : torch::zeros({2}, device());
  expect_error([&] { comm().all_reduce_sum(t); }, "rank 1: the tensor is on cpu but the nccl backend needs cuda:");
  expect_still_in_step();
}

// Gradient buckets overlapped with backward (what dist_train does with one GPU per rank) sum every
// rank's gradients, as buckets reduced after backward do; each rank computes all ranks' gradients
// locally for the expected sums.
struct ChainImpl : torch::nn::Module {
  ChainImpl() {
    torch::manual_seed(5);
    a = register_module("a", torch::nn::Linear(8, 16));
    b = register_module("b", torch::nn::Linear(16, 16));
    c = register_module("c", torch::nn::Linear(16, 4));
    unused = register_parameter("unused", torch::ones({3}));  // never gets a gradient
  }
  torch::Tensor forward(const torch::Tensor& x) { return c(torch::tanh(b(torch::tanh(a(x))))); }
  torch::nn::Linear a{nullptr}, b{nullptr}, c{nullptr};
  torch::Tensor unused;
};
TORCH_MODULE(Chain);

torch::Tensor input_of(int rank, const torch::Device& device) {
  torch::manual_seed(100 + rank);
  return torch::randn({5, 8}).to(device);
}

TEST_F(NcclWorld, OverlappedBucketsSumEveryRanksGradients) {
  const int W = comm().world_size();
  std::vector<torch::Tensor> expected;
  for (int q = 0; q < W; ++q) {
    Chain net;
    net->to(device());
    net->forward(input_of(q, device())).pow(2).sum().backward();
    size_t i = 0;
    for (auto& p : net->parameters()) {
      torch::Tensor g = p.grad().defined() ? p.grad().clone() : torch::zeros_like(p);
      if (q == 0) expected.push_back(g); else expected[i].add_(g);
      ++i;
    }
  }
  for (const bool overlap : {true, false}) {
    Chain net;
    net->to(device());
    GradientBuckets buckets(net->parameters(), comm(), /*bucket_bytes=*/64, /*first_bucket_bytes=*/64, overlap);
    EXPECT_EQ(buckets.overlaps_backward(), overlap && W > 1);  // a world of one uses no buckets
    for (int step = 0; step < 2; ++step) {
      for (auto& p : net->parameters()) {
        if (p.grad().defined()) p.mutable_grad().zero_();
      }
      buckets.begin_backward();
      net->forward(input_of(comm().rank(), device())).pow(2).sum().backward();
      buckets.synchronize();
    }
    if (W > 1) {
      EXPECT_EQ(buckets.num_buckets(), 6);
      // As on the CPU (tests/dist/gradient_overlap_mpi_test.cpp): the hooks start five of the six buckets.
      EXPECT_EQ(buckets.buckets_started_during_backward(), overlap ? 5 : 0);
    }
    EXPECT_TRUE(buckets.all_finite().item<bool>());
    size_t i = 0;
    for (auto& p : net->parameters()) {
      ASSERT_TRUE(p.grad().defined()) << i;
      EXPECT_TRUE(torch::allclose(p.grad(), expected[i], 1e-5, 1e-6)) << "overlap " << overlap << ", parameter " << i;
      ++i;
    }
  }
}

}  // namespace
}  // namespace dml::test
