// MPI suite (mpirun -np 2): ranks calling different collectives with equal shapes get the same
// dml::Error on both ranks, naming both operations, and stay in step afterwards.
#include "conformance.h"

namespace dml::test {
namespace {

class MpiOpAgreement : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = make_communicator(Backend::kMpi);
    ASSERT_EQ(comm_->world_size(), 2) << "run this suite with mpirun -np 2";
  }
  void expect_still_in_step() {
    torch::Tensor t = torch::full({1}, comm_->rank() + 1.0);
    comm_->all_reduce_sum(t);
    EXPECT_EQ(t.item<float>(), 3.0f);
  }
  std::unique_ptr<Communicator> comm_;
};

TEST_F(MpiOpAgreement, AllReduceAgainstBroadcastFailsOnBothRanks) {
  torch::Tensor t = torch::zeros({3});
  expect_error(
      [&] {
        if (comm_->rank() == 0) {
          comm_->all_reduce_sum(t);
        } else {
          comm_->broadcast(t, 0);
        }
      },
      "dist/mpi: ranks called different collectives (rank 0 called all_reduce_sum, rank 1 called broadcast (root 0))");
  expect_still_in_step();
}

TEST_F(MpiOpAgreement, BarrierAgainstAllGatherFailsOnBothRanks) {
  torch::Tensor t = torch::zeros({2});
  expect_error(
      [&] {
        if (comm_->rank() == 0) {
          comm_->barrier();
        } else {
          comm_->all_gather(t);
        }
      },
      "rank 0 called barrier, rank 1 called all_gather");
  expect_still_in_step();
  comm_->barrier();  // matching barriers pass
}

}  // namespace
}  // namespace dml::test
