// The agreement exchange includes the operation: ranks calling different collectives with equal
// shapes are caught, with one message (the same on every rank) naming each rank's operation.
// Hand-made 2-rank tables: what rank 0 and rank 1 would both compute.
#include "conformance.h"
#include "dist/tensor_agreement.h"

namespace dml::test {
namespace {

const dist::AgreementRules kRules{"mpi", dist::kHostDevice, false};

TEST(CollectiveOpAgreement, DifferentOperationsWithEqualShapesAreRejected) {
  const torch::Tensor t = torch::zeros({2, 3});
  const std::vector<dist::TensorSignature> table{
      dist::describe_tensor(t, kRules, 0, dist::CollectiveOp::kAllReduce),
      dist::describe_tensor(t, kRules, 0, dist::CollectiveOp::kBroadcast)};
  const std::string expected =
      "dist/mpi: ranks called different collectives (rank 0 called all_reduce_sum, rank 1 called broadcast "
      "(root 0)); every rank must issue the same collectives in the same order";
  // Each rank checks with its own operation; both get the same message.
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kAllReduce, table, kRules); }, expected);
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kBroadcast, table, kRules); }, expected);
}

TEST(CollectiveOpAgreement, BarrierAgainstACollectiveIsRejected) {
  const std::vector<dist::TensorSignature> table{
      dist::describe_barrier(),
      dist::describe_tensor(torch::zeros({4}), kRules, 0, dist::CollectiveOp::kAllGather)};
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kBarrier, table, kRules); },
               "rank 0 called barrier, rank 1 called all_gather");
}

TEST(CollectiveOpAgreement, EqualOperationsPassIncludingBarriers) {
  const torch::Tensor t = torch::zeros({4, 2});
  for (auto op : {dist::CollectiveOp::kAllReduce, dist::CollectiveOp::kAllGather, dist::CollectiveOp::kReduceScatter,
                  dist::CollectiveOp::kBroadcast}) {
    const std::vector<dist::TensorSignature> table{dist::describe_tensor(t, kRules, 1, op),
                                                   dist::describe_tensor(t, kRules, 1, op)};
    EXPECT_NO_THROW(dist::check_agreement(op, table, kRules)) << dist::op_name(op);
  }
  EXPECT_NO_THROW(dist::check_agreement(dist::CollectiveOp::kBarrier,
                                        {dist::describe_barrier(), dist::describe_barrier()}, kRules));
}

TEST(CollectiveOpAgreement, BroadcastsFromDifferentRootsNameTheRoots) {
  const torch::Tensor t = torch::zeros({2});
  const std::vector<dist::TensorSignature> table{
      dist::describe_tensor(t, kRules, 0, dist::CollectiveOp::kBroadcast),
      dist::describe_tensor(t, kRules, 1, dist::CollectiveOp::kBroadcast)};
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kBroadcast, table, kRules); },
               "ranks passed different roots (rank 0: 0, rank 1: 1)");
}

}  // namespace
}  // namespace dml::test
