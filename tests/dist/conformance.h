#pragma once
// Test bodies shared by the plain suite (one process) and the MPI suite (mpirun -np 2). Every
// expected value is derived by hand from "rank r contributes something made of r", in terms of
// the world size W, so the same body checks single (W = 1) and mpi (W = 2).
#include <cstdlib>
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "dml/dist/all_gather.h"
#include "dml/dist/broadcast_module.h"
#include "dml/dist/communicator.h"
#include "dml/dist/gradient_buckets.h"
#include "dist/comm_device.h"
#include "dml/util/error.h"

namespace dml::test {

// Wraps a communicator and counts the collectives issued through it.
class CountingCommunicator final : public Communicator {
 public:
  explicit CountingCommunicator(Communicator& inner) : inner_(inner) {}
  std::string backend_name() const override { return inner_.backend_name(); }
  int rank() const override { return inner_.rank(); }
  int world_size() const override { return inner_.world_size(); }
  int local_rank() const override { return inner_.local_rank(); }
  int local_size() const override { return inner_.local_size(); }
  int cuda_device() const override { return inner_.cuda_device(); }
  void all_reduce_sum(at::Tensor& t) override { ++all_reduces; inner_.all_reduce_sum(t); }
  at::Tensor all_gather(const at::Tensor& t) override { ++all_gathers; return inner_.all_gather(t); }
  at::Tensor reduce_scatter_sum(const at::Tensor& t) override { ++reduce_scatters; return inner_.reduce_scatter_sum(t); }
  void broadcast(at::Tensor& t, int root) override { ++broadcasts; inner_.broadcast(t, root); }
  void barrier() override { inner_.barrier(); }
  [[noreturn]] void abort(int exit_code) override {
    inner_.abort(exit_code);
    std::abort();  // not reached: inner_.abort never returns (the attribute is not part of the call)
  }
  int all_reduces = 0, all_gathers = 0, reduce_scatters = 0, broadcasts = 0;

 private:
  Communicator& inner_;
};

// `t` moved to the communicator's device (CUDA for nccl, else unchanged on the CPU).
inline torch::Tensor on(const Communicator& comm, const torch::Tensor& t) { return t.to(dist::comm_device(comm)); }

// Runs `body` expecting a dml::Error whose message contains `needle`; returns the message.
template <typename Body>
std::string expect_error(Body body, const std::string& needle) {
  try {
    body();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a dml::Error containing '" << needle << "'";
  return {};
}

inline void check_identity(Communicator& comm) {
  EXPECT_GE(comm.rank(), 0);
  EXPECT_LT(comm.rank(), comm.world_size());
  EXPECT_GE(comm.local_rank(), 0);
  EXPECT_LT(comm.local_rank(), comm.local_size());
  EXPECT_LE(comm.local_size(), comm.world_size());
  if (comm.backend_name() == "nccl") {
    EXPECT_GE(comm.cuda_device(), 0);
  } else {
    EXPECT_EQ(comm.cuda_device(), -1);  // host tensors
  }
}

// all_reduce of rank+1 gives W(W+1)/2 for every supported dtype.
inline void check_all_reduce(Communicator& comm) {
  const int64_t W = comm.world_size(), r = comm.rank();
  for (auto dtype : {torch::kFloat32, torch::kFloat64, torch::kInt64, torch::kInt32, torch::kUInt8}) {
    torch::Tensor t = on(comm, torch::full({3, 5}, r + 1, torch::dtype(dtype)));
    comm.all_reduce_sum(t);
    EXPECT_TRUE(torch::equal(t.cpu(), torch::full({3, 5}, W * (W + 1) / 2, torch::dtype(dtype)))) << dtype;
  }
  // A non-contiguous view is reduced and written back in place.
  torch::Tensor base = on(comm, torch::arange(12, torch::kFloat64).view({3, 4}) * (r + 1));
  torch::Tensor view = base.t();
  comm.all_reduce_sum(view);
  EXPECT_TRUE(torch::equal(base.cpu(), torch::arange(12, torch::kFloat64).view({3, 4}) * static_cast<double>(W * (W + 1) / 2)));
}

// all_gather rows equal their source rank: rank r sends [[10r, 10r, 10r], [10r+1, ...]].
inline void check_all_gather(Communicator& comm) {
  const int64_t W = comm.world_size(), r = comm.rank();
  torch::Tensor mine = on(comm, (torch::arange(2, torch::kInt64) + 10 * r).view({2, 1}).expand({2, 3}).contiguous());
  torch::Tensor all = comm.all_gather(mine).cpu();
  ASSERT_EQ(all.sizes(), (std::vector<int64_t>{2 * W, 3}));
  for (int64_t i = 0; i < 2 * W; ++i) {
    const int64_t expected = 10 * (i / 2) + i % 2;
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(all[i][j].item<int64_t>(), expected) << "row " << i;
  }
  torch::Tensor scalar = on(comm, torch::tensor(static_cast<double>(r) + 0.25));
  torch::Tensor gathered = comm.all_gather(scalar).cpu();
  ASSERT_EQ(gathered.sizes(), (std::vector<int64_t>{W}));
  for (int64_t q = 0; q < W; ++q) EXPECT_EQ(gathered[q].item<double>(), q + 0.25);
}

// Rank r sends element (i, j) = (r+1) * (3i + j); the sum is W(W+1)/2 * (3i + j) and rank r keeps
// rows 2r, 2r+1.
inline void check_reduce_scatter(Communicator& comm) {
  const int64_t W = comm.world_size(), r = comm.rank();
  torch::Tensor input = on(comm, torch::arange(2 * W * 3, torch::kFloat32).view({2 * W, 3}) * static_cast<float>(r + 1));
  torch::Tensor out = comm.reduce_scatter_sum(input).cpu();
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 3}));
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 3; ++j) {
      EXPECT_EQ(out[i][j].item<float>(), static_cast<float>(W * (W + 1) / 2 * (3 * (2 * r + i) + j)));
    }
  }
}

// Broadcast from the last rank (root 1 under mpi): every rank ends with 7*root + 1.
inline void check_broadcast(Communicator& comm) {
  const int root = comm.world_size() - 1;
  for (auto dtype : {torch::kFloat32, torch::kInt64, torch::kUInt8}) {
    torch::Tensor t = on(comm, torch::full({4, 2}, 7 * comm.rank() + 1, torch::dtype(dtype)));
    comm.broadcast(t, root);
    EXPECT_TRUE(torch::equal(t.cpu(), torch::full({4, 2}, 7 * root + 1, torch::dtype(dtype)))) << dtype;
  }
  comm.barrier();
}

// Every rank passes a bool tensor: rejected everywhere, naming rank 0 and the supported dtypes.
inline void check_bad_dtype_rejected(Communicator& comm) {
  torch::Tensor flags = on(comm, torch::zeros({3}, torch::kBool));
  expect_error([&] { comm.all_reduce_sum(flags); }, "rank 0: dtype Bool is not supported; use float32");
  torch::Tensor ok = on(comm, torch::ones({2}));
  comm.all_reduce_sum(ok);  // still in step afterwards
  EXPECT_EQ(ok.cpu()[0].item<float>(), comm.world_size());
}

// Rank q weights the gathered [2W, 3] tensor with w_q(i, j) = (q+1) * (3i + j + 1); the gradient on
// rank r's x (rows 2r, 2r+1 of the gather) is sum_q w_q of its block = W(W+1)/2 * (3(2r+i) + j + 1).
inline void check_all_gather_with_grad(Communicator& comm) {
  const int64_t W = comm.world_size(), r = comm.rank();
  torch::Tensor x = on(comm, torch::rand({2, 3}, torch::kFloat32) + r).requires_grad_(true);
  torch::Tensor g = all_gather_with_grad(comm, x);
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{2 * W, 3}));
  EXPECT_TRUE(torch::equal(g.slice(0, 2 * r, 2 * r + 2).detach(), x.detach()));
  torch::Tensor w = on(comm, torch::arange(2 * W * 3, torch::kFloat32).view({2 * W, 3}) + 1) * static_cast<float>(r + 1);
  (w * g).sum().backward();
  ASSERT_TRUE(x.grad().defined());
  const torch::Tensor grad = x.grad().cpu();
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 3; ++j) {
      EXPECT_EQ(grad[i][j].item<float>(), static_cast<float>(W * (W + 1) / 2 * (3 * (2 * r + i) + j + 1)));
    }
  }
}

// Parameters of odd sizes (float32 [7], [3,5], [1], [2,2,3]; float64 [4]). Rank r's gradient of
// parameter k, element e is (r+1)(k+1) + 0.5e; the sum is W(W+1)/2 (k+1) + 0.5 W e. Parameter 2
// has no gradient on rank 0 (counts as zero): its sum runs over ranks 1..W-1 only.
inline void check_gradient_buckets(Communicator& comm, int64_t bucket_bytes, int64_t first_bucket_bytes,
                                   int64_t expected_buckets) {
  const int64_t W = comm.world_size(), r = comm.rank();
  std::vector<torch::Tensor> params = {
      torch::zeros({7}, torch::kFloat32), torch::zeros({3, 5}, torch::kFloat32), torch::zeros({1}, torch::kFloat32),
      torch::zeros({2, 2, 3}, torch::kFloat32), torch::zeros({4}, torch::kFloat64)};
  for (auto& p : params) p = on(comm, p).requires_grad_(true);
  for (size_t k = 0; k < params.size(); ++k) {
    if (k == 2 && r == 0) continue;
    const auto& p = params[k];
    p.mutable_grad() = (torch::arange(p.numel(), p.options().requires_grad(false)) * 0.5 + (r + 1.0) * (k + 1.0))
                           .view(p.sizes());
  }
  CountingCommunicator counting(comm);
  GradientBuckets buckets(params, counting, bucket_bytes, first_bucket_bytes);
  EXPECT_EQ(buckets.num_buckets(), expected_buckets);
  buckets.synchronize();
  // One collective per bucket; none with one rank (the gradients already are the sums).
  EXPECT_EQ(counting.all_reduces, W == 1 ? 0 : expected_buckets);
  EXPECT_EQ(counting.all_gathers, 1);                  // the layout check at construction
  for (size_t k = 0; k < params.size(); ++k) {
    const auto& p = params[k];
    ASSERT_TRUE(p.grad().defined()) << k;
    const double rank_sum = (k == 2) ? (W * (W + 1) / 2 - 1) : W * (W + 1) / 2;  // sum of (r+1) over contributing ranks
    const double ranks = (k == 2) ? W - 1 : W;
    torch::Tensor expected =
        (torch::arange(p.numel(), torch::kFloat64) * 0.5 * ranks + rank_sum * (k + 1.0)).view(p.sizes());
    EXPECT_TRUE(torch::allclose(p.grad().cpu().to(torch::kFloat64), expected, 0, 1e-6)) << "parameter " << k << "\n"
                                                                                   << p.grad() << "\n" << expected;
  }
}

}  // namespace dml::test
