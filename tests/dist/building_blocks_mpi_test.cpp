// MPI suite (mpirun -np 2) for the module-level building blocks.
#include "conformance.h"
#include "dml/dist/scalar_collectives.h"

namespace dml::test {
namespace {

struct NetImpl : torch::nn::Module {
  explicit NetImpl(bool extra, int64_t out = 4) {
    fc = register_module("fc", torch::nn::Linear(3, out));
    bn = register_module("bn", torch::nn::BatchNorm1d(out));
    flag = register_buffer("flag", torch::zeros({2}, torch::kBool));
    if (extra) bonus = register_parameter("bonus", torch::zeros({2}));
  }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
  torch::Tensor flag, bonus;
};
TORCH_MODULE(Net);

class MpiModules : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = make_communicator(Backend::kMpi);
    ASSERT_EQ(comm_->world_size(), 2) << "run this suite with mpirun -np 2";
  }
  std::unique_ptr<Communicator> comm_;
};

// Every tensor k of rank r holds arange * 0.1 + 100 r + k (bool: rank 0 true, rank 1 false);
// afterwards every rank holds rank 0's values.
TEST_F(MpiModules, BroadcastModuleMakesRankOneEqualRankZero) {
  Net net(false);
  const int r = comm_->rank();
  {
    torch::NoGradGuard no_grad;
    int k = 0;
    for (auto& t : net->parameters()) t.copy_(torch::arange(t.numel()).view(t.sizes()) * 0.1 + 100 * r + k++);
    net->bn->running_mean.fill_(5 + r);
    net->bn->running_var.fill_(7 + r);
    net->bn->num_batches_tracked.fill_(11 + r);
    net->flag.fill_(r == 0);
  }
  CountingCommunicator counting(*comm_);
  broadcast_module(counting, *net, /*root=*/0);
  EXPECT_EQ(counting.broadcasts, 1);  // every tensor in one packed broadcast
  int k = 0;
  for (auto& t : net->parameters()) {
    EXPECT_TRUE(torch::allclose(t, torch::arange(t.numel()).view(t.sizes()) * 0.1 + k++, 0, 0)) << k;
  }
  EXPECT_TRUE(torch::equal(net->bn->running_mean, torch::full({4}, 5.0f)));
  EXPECT_TRUE(torch::equal(net->bn->running_var, torch::full({4}, 7.0f)));
  EXPECT_EQ(net->bn->num_batches_tracked.item<int64_t>(), 11);
  EXPECT_TRUE(net->flag.all().item<bool>());
}

TEST_F(MpiModules, CheckSameModulePassesForTheSameModel) {
  Net net(false);
  EXPECT_NO_THROW(check_same_module(*comm_, *net, "model"));
}

TEST_F(MpiModules, CheckSameModuleThrowsOnBothRanksForAnExtraParameter) {
  Net net(/*extra=*/comm_->rank() == 1);
  const std::string message = expect_error([&] { check_same_module(*comm_, *net, "test-model"); },
                                           "model differs across ranks: test-model: rank 1 has 'parameter bonus "
                                           "Float [2]' where rank 0 has 'parameter fc.weight Float [4, 3]'");
  // The root module's own parameter comes first (pre-order); 4 parameters + 4 buffers on rank 0.
  EXPECT_NE(message.find("(entry 0; rank 0 has 8 parameters+buffers, rank 1 has 9"), std::string::npos) << message;
}

TEST_F(MpiModules, CheckSameModuleNamesTheFirstDifferingShape) {
  Net net(false, /*out=*/comm_->rank() == 1 ? 5 : 4);
  expect_error([&] { check_same_module(*comm_, *net, "model"); },
               "rank 1 has 'parameter fc.weight Float [5, 3]' where rank 0 has 'parameter fc.weight Float [4, 3]' "
               "(entry 0");
  // broadcast_module refuses too (it checks first), on both ranks, without hanging.
  expect_error([&] { broadcast_module(*comm_, *net); }, "model differs across ranks: broadcast_module");
}

TEST_F(MpiModules, GradientBucketsRejectDifferentParameterListsOnBothRanks) {
  std::vector<torch::Tensor> params = {torch::zeros({3}).requires_grad_(true)};
  if (comm_->rank() == 1) params.push_back(torch::zeros({2}).requires_grad_(true));
  CountingCommunicator counting(*comm_);
  expect_error([&] { GradientBuckets b(params, counting, /*bucket_bytes=*/4, /*first_bucket_bytes=*/4); },
               "GradientBuckets: the parameter lists differ across ranks (rank 0: 1 parameters in 1 buckets; "
               "rank 1: 2 parameters in 2 buckets");
  EXPECT_EQ(counting.all_gathers, 1);
  EXPECT_EQ(counting.all_reduces, 0);
}

TEST_F(MpiModules, AnyRankAndScalarSum) {
  EXPECT_TRUE(any_rank(*comm_, comm_->rank() == 1));
  EXPECT_TRUE(any_rank(*comm_, comm_->rank() == 0));
  EXPECT_FALSE(any_rank(*comm_, false));
  EXPECT_EQ(all_reduce_sum_scalar(*comm_, comm_->rank() + 0.5), 2.0);  // 0.5 + 1.5
}

}  // namespace
}  // namespace dml::test
