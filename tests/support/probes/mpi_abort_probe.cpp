// Probe for tests/support/mpi_main.cpp, run by the ctest test mpi_main_aborts_on_first_failure under
// `mpirun -np 2`; not a suite. Rank 1 fails an ASSERT; rank 0 meanwhile waits for a message from
// rank 1 that is never sent. Without the main's abort-on-fatal-failure the job never ends (rank 0
// waits forever, rank 1 waits in the main's final MPI_Allreduce); with it, the job ends non-zero
// at once and the output holds rank 1's failure. A second test must never start.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

namespace {

int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

TEST(MpiAbortProbe, RankOneFailsWhileRankZeroWaits) {
  if (rank() == 1) {
    ASSERT_EQ(1, 2) << "deliberate failure on rank 1";
  } else {
    int never = 0;
    MPI_Recv(&never, 1, MPI_INT, 1, /*tag=*/4242, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
}

TEST(MpiAbortProbe, NeverRuns) { std::printf("probe: second test started on rank %d\n", rank()); }

}  // namespace
