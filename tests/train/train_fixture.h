#pragma once
// Shared helpers of the dist_train suites: running dist_train (alone or under mpirun), and reading
// its metrics file and checkpoints. The suites' data is write_synthetic_shards (the shared fixture,
// tests/support/synthetic_shards.h).
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "synthetic_shards.h"
#include "test_support.h"

namespace dml::test {

// Limit of one dist_train run (seconds) unless a test passes its own. A test chains at most
// kMaxChainedRuns runs at this limit (InterruptedRunResumedEqualsUninterruptedRunBitExactly,
// TwoRankResumeWithBatchNormStatisticsIsBitExact, BatchNormFreeModelTrainsIdenticallyOnOne...), or
// runs with shorter limits (Failures: five of 120 s, checked there). All of it has to end well
// before ctest's limit for the suite (DML_TEST_TIMEOUT_train in tests/CMakeLists.txt), so that a
// slow or hung run fails with its own output instead of ctest killing the whole test.
inline constexpr int kDistTrainTimeoutS = 240;
inline constexpr int kMaxChainedRuns = 3;
#ifdef DML_CTEST_TIMEOUT_S
static_assert(kMaxChainedRuns * kDistTrainTimeoutS + 120 <= DML_CTEST_TIMEOUT_S,
              "ctest's limit for tests/train must exceed the longest chain of dist_train runs");
#endif

// Runs dist_train with `args`; ranks == 0 runs it without a launcher, else under mpirun -np ranks
// (mpirun_command in test_support.h). Killed after timeout_s seconds (exit code 124).
CommandResult run_dist_train(const std::vector<std::string>& args, int ranks, int timeout_s = kDistTrainTimeoutS);
// The shell command run_dist_train runs (without its time limit).
std::string dist_train_command(const std::vector<std::string>& args, int ranks);

struct MetricsLog {
  std::map<int64_t, double> loss_by_step;             // training records (step -> loss)
  std::vector<std::map<std::string, double>> evals;   // evaluation records, numeric fields
};
MetricsLog read_metrics(const std::string& path);

// The model stored in a dml checkpoint (-last.pt or -best.pt): parameters and buffers (BatchNorm's
// running_mean, running_var, num_batches_tracked), name -> tensor.
struct ModelState {
  std::map<std::string, torch::Tensor> parameters, buffers;
};
ModelState checkpoint_state(const std::string& path, const std::string& model, int64_t embed_dim,
                            bool small_input_stem);
// Its parameters only.
std::map<std::string, torch::Tensor> checkpoint_parameters(const std::string& path, const std::string& model,
                                                           int64_t embed_dim, bool small_input_stem);

// Parameters of a freshly built model (what dist_train starts from with --seed seed).
std::map<std::string, torch::Tensor> fresh_parameters(const std::string& model, int64_t embed_dim, uint64_t seed);

}  // namespace dml::test
