// Main for MPI suites run under `mpirun -np 2`: every rank runs every test; the exit code is
// agreed across ranks (a failure on any rank fails all), and only rank 0 prints gtest output.
#include <gtest/gtest.h>
#include <mpi.h>

#include <torch/torch.h>

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  ::testing::InitGoogleTest(&argc, argv);
  torch::set_num_threads(1);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int local_failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = 0;
  MPI_Allreduce(&local_failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && any_failed && !local_failed) {
    std::fprintf(stderr, "[mpi] a test failed on another rank\n");
  }
  MPI_Finalize();
  return any_failed;
}
