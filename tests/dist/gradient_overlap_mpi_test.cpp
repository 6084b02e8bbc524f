// MPI suite (mpirun -np 2): gradient buckets overlapped with backward (autograd hooks start each
// bucket's all-reduce once its gradients are in) give exactly the sum of both ranks' gradients,
// computed here independently on one rank, and the same as buckets reduced after backward.
#include "conformance.h"
#include "dml/dist/gradient_buckets.h"

namespace dml::test {
namespace {

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

torch::Tensor input_of(int rank) {
  torch::manual_seed(100 + rank);
  return torch::randn({5, 8});
}

// Gradients of sum(f(x)^2) for rank r's input, without any communication.
std::vector<torch::Tensor> local_gradients(int rank) {
  Chain net;
  net->forward(input_of(rank)).pow(2).sum().backward();
  std::vector<torch::Tensor> grads;
  for (auto& p : net->parameters()) grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return grads;
}

std::vector<torch::Tensor> reduced_gradients(Communicator& comm, bool overlap, int64_t* started_in_backward) {
  Chain net;
  // Buckets of at most 64 bytes: several of them, so some are complete long before backward ends.
  GradientBuckets buckets(net->parameters(), comm, /*bucket_bytes=*/64, /*first_bucket_bytes=*/64, overlap);
  EXPECT_EQ(buckets.overlaps_backward(), overlap);
  EXPECT_EQ(buckets.num_buckets(), 6);
  for (int step = 0; step < 2; ++step) {  // a second step reuses the armed state correctly
    for (auto& p : net->parameters()) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
    buckets.begin_backward();
    net->forward(input_of(comm.rank())).pow(2).sum().backward();
    buckets.synchronize();
  }
  *started_in_backward = buckets.buckets_started_during_backward();
  std::vector<torch::Tensor> grads;
  for (auto& p : net->parameters()) grads.push_back(p.grad().clone());
  return grads;
}

TEST(GradientOverlap, OverlappedBucketsSumBothRanksGradientsExactly) {
  auto comm = make_communicator(Backend::kMpi);
  ASSERT_EQ(comm->world_size(), 2) << "run this suite with mpirun -np 2";
  const auto g0 = local_gradients(0), g1 = local_gradients(1);
  int64_t started_overlapped = 0, started_after = 0;
  const auto overlapped = reduced_gradients(*comm, true, &started_overlapped);
  const auto after = reduced_gradients(*comm, false, &started_after);
  ASSERT_EQ(overlapped.size(), g0.size());
  for (size_t i = 0; i < g0.size(); ++i) {
    const torch::Tensor expected = g0[i] + g1[i];  // two summands: the same in either order
    EXPECT_TRUE(torch::equal(overlapped[i], expected)) << "parameter " << i;
    EXPECT_TRUE(torch::equal(after[i], expected)) << "parameter " << i;
  }
  // parameters() lists the module's own parameter first: `unused`, which sums zeros.
  EXPECT_TRUE(torch::equal(overlapped.front(), torch::zeros({3}))) << "the unused parameter sums zeros";
  // Buckets, filled in reverse registration order and closed at >= 64 bytes: {c.bias, c.weight},
  // {b.bias}, {b.weight}, {a.bias}, {a.weight}, {unused}. They start in order, and the last holds the
  // parameter without a gradient, so the hooks start the first five during backward.
  EXPECT_EQ(started_overlapped, 5);
  EXPECT_EQ(started_after, 0);
}

}  // namespace
}  // namespace dml::test
