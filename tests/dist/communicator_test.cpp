// Plain (one-process) suite: the conformance bodies on every backend that runs without a launcher,
// the factory, launcher detection, and the cross-rank agreement rules on hand-made 2-rank tables.
#include <map>

#include "conformance.h"
#include "dml/dist/launch_environment.h"
#include "dist/tensor_agreement.h"

namespace dml::test {
namespace {

class PlainConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { comm_ = make_communicator(parse_backend(GetParam())); }
  std::unique_ptr<Communicator> comm_;
};

TEST_P(PlainConformance, IsAWorldOfOne) {
  EXPECT_EQ(comm_->backend_name(), GetParam());
  EXPECT_EQ(comm_->rank(), 0);
  EXPECT_EQ(comm_->world_size(), 1);
  check_identity(*comm_);
}
TEST_P(PlainConformance, AllReduceIsIdentity) { check_all_reduce(*comm_); }
TEST_P(PlainConformance, AllGatherIsIdentity) { check_all_gather(*comm_); }
TEST_P(PlainConformance, ReduceScatterIsIdentity) { check_reduce_scatter(*comm_); }
TEST_P(PlainConformance, BroadcastFromRootZero) { check_broadcast(*comm_); }
TEST_P(PlainConformance, RejectsUnsupportedDtype) { check_bad_dtype_rejected(*comm_); }
TEST_P(PlainConformance, BroadcastRejectsRootOutsideWorld) {
  torch::Tensor t = torch::ones({2});
  expect_error([&] { comm_->broadcast(t, 1); }, "root 1 is not a rank (world size 1)");
}

// The MPI backend also runs as a singleton (no launcher), world size 1.
INSTANTIATE_TEST_SUITE_P(Backends, PlainConformance, ::testing::Values("single", "mpi"));

TEST(SingleCommunicator, AllGatherReturnsACopy) {
  auto comm = make_communicator(Backend::kSingle);
  torch::Tensor x = torch::ones({2, 2});
  torch::Tensor y = comm->all_gather(x);
  y.add_(1);
  EXPECT_EQ(x.sum().item<float>(), 4.0f);
}

TEST(SingleCommunicatorDeathTest, AbortExitsWithTheCode) {
  auto comm = make_communicator(Backend::kSingle);
  EXPECT_EXIT(comm->abort(3), ::testing::ExitedWithCode(3), "");
}

TEST(Factory, ParsesEveryBackendName) {
  EXPECT_EQ(parse_backend("auto"), Backend::kAuto);
  EXPECT_EQ(parse_backend("single"), Backend::kSingle);
  EXPECT_EQ(parse_backend("mpi"), Backend::kMpi);
  EXPECT_EQ(parse_backend("nccl"), Backend::kNccl);
  for (Backend b : {Backend::kAuto, Backend::kSingle, Backend::kMpi, Backend::kNccl}) {
    EXPECT_EQ(parse_backend(backend_to_string(b)), b);
  }
  expect_error([] { parse_backend("gloo"); }, "communicator backend 'gloo' is unknown; choose one of auto, single, mpi, nccl");
}

TEST(Factory, BuiltBackendsIncludeSingleAndMpi) {
  const auto built = built_backends();
  ASSERT_GE(built.size(), 2u);
  EXPECT_EQ(built[0], "single");
  EXPECT_EQ(built[1], "mpi");
}

TEST(Factory, MissingNcclNamesTheBuiltBackendsAndTheFix) {
  const auto built = built_backends();
  if (std::find(built.begin(), built.end(), "nccl") != built.end()) GTEST_SKIP() << "nccl is built here";
  const std::string message = expect_error([] { make_communicator(Backend::kNccl); }, "'nccl' is not built");
  EXPECT_NE(message.find("built: single, mpi"), std::string::npos) << message;
  EXPECT_NE(message.find("CUDA LibTorch"), std::string::npos) << message;
}

TEST(Factory, AutoWithoutLauncherIsSingle) {
  if (read_launch_environment().launched) GTEST_SKIP() << "this test process was started by a launcher";
  EXPECT_EQ(make_communicator(Backend::kAuto)->backend_name(), "single");
}

EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(LauncherEnv, RecognisesOpenMpiPmiPmixAndSrun) {
  auto launched = [](std::map<std::string, std::string> vars) { return read_launch_environment(fake_env(std::move(vars))).launched; };
  EXPECT_FALSE(launched({}));
  EXPECT_TRUE(launched({{"OMPI_COMM_WORLD_SIZE", "4"}}));
  EXPECT_TRUE(launched({{"PMI_SIZE", "2"}}));
  EXPECT_TRUE(launched({{"PMIX_RANK", "0"}}));
  EXPECT_TRUE(launched({{"SLURM_NTASKS", "8"}, {"SLURM_PROCID", "3"}}));
  // An allocation without srun, or a one-task step, is not a distributed launch.
  EXPECT_FALSE(launched({{"SLURM_NTASKS", "8"}}));
  EXPECT_FALSE(launched({{"SLURM_NTASKS", "1"}, {"SLURM_PROCID", "0"}}));
  EXPECT_FALSE(launched({{"OMPI_COMM_WORLD_SIZE", ""}}));
}

// Rank and local rank come from the same reading, in the launchers' own variables.
TEST(LauncherEnv, RankAndLocalRank) {
  const LaunchEnvironment none = read_launch_environment(fake_env({}));
  EXPECT_EQ(none.rank, 0);
  EXPECT_EQ(none.local_rank, 0);
  const LaunchEnvironment ompi = read_launch_environment(
      fake_env({{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}}));
  EXPECT_EQ(ompi.rank, 3);
  EXPECT_EQ(ompi.local_rank, 1);
  const LaunchEnvironment srun = read_launch_environment(
      fake_env({{"SLURM_NTASKS", "8"}, {"SLURM_PROCID", "6"}, {"SLURM_LOCALID", "2"}}));
  EXPECT_TRUE(srun.launched);
  EXPECT_EQ(srun.rank, 6);
  EXPECT_EQ(srun.local_rank, 2);
}

// The backend is chosen in one place: GPU replicas without NCCL built fall back to MPI/single.
TEST(Factory, ChooseBackend) {
  EXPECT_EQ(choose_backend(Backend::kMpi, -1), Backend::kMpi);
  EXPECT_EQ(choose_backend(Backend::kSingle, 0), Backend::kSingle);
  const auto built = built_backends();
  const bool nccl = std::find(built.begin(), built.end(), "nccl") != built.end();
  // Host replicas never get NCCL; GPU replicas get it exactly when it is built.
  EXPECT_NE(choose_backend(Backend::kAuto, -1), Backend::kNccl);
  EXPECT_EQ(choose_backend(Backend::kAuto, 0) == Backend::kNccl, nccl);
}

// Agreement rules on hand-made tables: what rank 0 and rank 1 would both compute.
const dist::AgreementRules kMpiRules{"mpi", dist::kHostDevice, false};

std::vector<dist::TensorSignature> table_of(const std::vector<torch::Tensor>& per_rank, int root = 0,
                                            const dist::AgreementRules& rules = kMpiRules) {
  std::vector<dist::TensorSignature> table;
  for (const auto& t : per_rank) table.push_back(dist::describe_tensor(t, rules, root));
  return table;
}

TEST(TensorAgreement, EqualShapesPass) {
  EXPECT_NO_THROW(dist::check_agreement(dist::CollectiveOp::kAllGather,
                                        table_of({torch::zeros({2, 3}), torch::ones({2, 3})}), kMpiRules));
  EXPECT_NO_THROW(dist::check_agreement(dist::CollectiveOp::kReduceScatter,
                                        table_of({torch::zeros({4, 3}), torch::ones({4, 3})}), kMpiRules));
}

TEST(TensorAgreement, UnevenAllGatherNamesBothShapes) {
  const auto table = table_of({torch::zeros({2, 3}), torch::zeros({3, 3})});
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kAllGather, table, kMpiRules); },
               "dist/mpi all_gather: shapes differ across ranks (rank 0 has Float [2, 3], rank 1 has Float [3, 3])");
}

TEST(TensorAgreement, DtypeMismatchIsAShapeMismatch) {
  const auto table = table_of({torch::zeros({2}), torch::zeros({2}, torch::kFloat64)});
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kAllReduce, table, kMpiRules); },
               "rank 1 has Double [2]");
}

TEST(TensorAgreement, ReduceScatterNeedsDivisibleRows) {
  const auto table = table_of({torch::zeros({5, 2}), torch::zeros({5, 2})});
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kReduceScatter, table, kMpiRules); },
               "first dimension 5 is not divisible by the world size 2; pad it to a multiple of 2");
  const auto scalars = table_of({torch::zeros({}), torch::zeros({})});
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kReduceScatter, scalars, kMpiRules); },
               "the tensor is a scalar");
}

TEST(TensorAgreement, BroadcastRootsMustAgree) {
  const auto table = std::vector<dist::TensorSignature>{dist::describe_tensor(torch::zeros({2}), kMpiRules, 0),
                                                        dist::describe_tensor(torch::zeros({2}), kMpiRules, 1)};
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kBroadcast, table, kMpiRules); },
               "ranks passed different roots (rank 0: 0, rank 1: 1)");
}

TEST(TensorAgreement, ProblemsOnOneRankAreReportedWithThatRank) {
  const auto table = table_of({torch::zeros({2}), torch::zeros({2}, torch::kFloat16)});
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kAllReduce, table, kMpiRules); },
               "dist/mpi all_reduce_sum: rank 1: dtype Half is not supported");
  const dist::AgreementRules nccl{"nccl", /*required_device=*/0, true};
  const auto on_cpu = table_of({torch::zeros({2}), torch::zeros({2})}, 0, nccl);
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kAllReduce, on_cpu, nccl); },
               "rank 0: the tensor is on cpu but the nccl backend needs cuda:0 tensors");
  const auto undefined = table_of({torch::zeros({2}), torch::Tensor()});
  expect_error([&] { dist::check_agreement(dist::CollectiveOp::kAllGather, undefined, kMpiRules); },
               "rank 1: the tensor is undefined");
}

}  // namespace
}  // namespace dml::test
