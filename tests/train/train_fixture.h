#pragma once
// Shared helpers of the dist_train suites: a small synthetic shard set, running dist_train (alone
// or under mpirun), and reading its metrics file and checkpoints.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "test_support.h"

namespace dml::test {

// Writes train (num_train_classes x per_class) and test (num_test_classes x per_class) splits of
// side x side gray images whose class shows as a fixed random pattern under per-image noise.
void write_synthetic_shards(const std::string& dir, int64_t num_train_classes, int64_t num_test_classes,
                            int64_t per_class, int64_t side);

// Runs dist_train with `args`; ranks == 0 runs it without a launcher, else under mpirun -np ranks.
CommandResult run_dist_train(const std::vector<std::string>& args, int ranks, int timeout_s = 600);
std::string dist_train_command(const std::vector<std::string>& args, int ranks);

struct MetricsLog {
  std::map<int64_t, double> loss_by_step;             // training records (step -> loss)
  std::vector<std::map<std::string, double>> evals;   // evaluation records, numeric fields
};
MetricsLog read_metrics(const std::string& path);

// Parameters (name -> tensor) of the model stored in a dml checkpoint.
std::map<std::string, torch::Tensor> checkpoint_parameters(const std::string& path, const std::string& model,
                                                           int64_t embed_dim, bool small_input_stem);

// Parameters of a freshly built model (what dist_train starts from with --seed seed).
std::map<std::string, torch::Tensor> fresh_parameters(const std::string& model, int64_t embed_dim, uint64_t seed);

}  // namespace dml::test
