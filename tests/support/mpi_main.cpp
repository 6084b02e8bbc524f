// Main for MPI suites run under `mpirun -np 2`: every rank runs every test; the exit code is
// agreed across ranks (a failure on any rank fails all), and only rank 0 prints gtest output.
//
// A fatal failure (a failed ASSERT_*, FAIL(), or an exception escaping a test) on any rank ends the
// whole job at once: the rank prints the failure and calls MPI_Abort. Otherwise the failing rank
// would leave the test early while the others wait in the test's next collective until ctest's
// timeout. Non-fatal failures (EXPECT_*) keep every rank on the same path, so they are reported
// normally and agreed at the end. Checked by the mpi_main_aborts_on_first_failure test
// (tests/support/probes/).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <string>

#ifndef DML_MPI_MAIN_WITHOUT_TORCH  // the abort probe is built without torch, to compile quickly
#include <torch/torch.h>
#endif

namespace {

class AbortJobOnFatalFailure : public ::testing::EmptyTestEventListener {
 public:
  explicit AbortJobOnFatalFailure(int rank) : rank_(rank) {}

  // The test's name is kept here: gtest calls OnTestPartResult holding the lock that
  // UnitTest::current_test_info() takes, so asking for it there would deadlock.
  void OnTestStart(const ::testing::TestInfo& test) override {
    test_ = std::string(test.test_suite_name()) + "." + test.name();
  }
  void OnTestEnd(const ::testing::TestInfo&) override { test_ = "(outside a test)"; }

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.fatally_failed()) return;
    std::fprintf(stderr, "[mpi rank %d] fatal failure in %s at %s:%d:\n%s\n[mpi rank %d] aborting the job\n",
                 rank_, test_.c_str(), result.file_name() != nullptr ? result.file_name() : "unknown file",
                 result.line_number(), result.message(), rank_);
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

 private:
  int rank_;
  std::string test_ = "(outside a test)";
};

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  ::testing::InitGoogleTest(&argc, argv);
#ifndef DML_MPI_MAIN_WITHOUT_TORCH
  torch::set_num_threads(1);
#endif
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (rank != 0) delete listeners.Release(listeners.default_result_printer());
  // Appended last: on rank 0 the default printer has shown the failure before the job ends.
  listeners.Append(new AbortJobOnFatalFailure(rank));
  int local_failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = 0;
  MPI_Allreduce(&local_failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && any_failed && !local_failed) {
    std::fprintf(stderr, "[mpi] a test failed on another rank\n");
  }
  MPI_Finalize();
  return any_failed;
}
