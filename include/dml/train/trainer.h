#pragma once
// The training loop: owns the components and calls each once per step; no math of its own.
// Every rank constructs a Trainer with the same options and calls run(); collectives stay in
// lock-step because every rank runs the same steps, logs at the same steps and evaluates at the
// same epochs.
#include <memory>

#include "dml/dist/communicator.h"
#include "dml/eval/retrieval_metrics.h"
#include "dml/train/train_config.h"

namespace dml {

struct TrainSummary {
  bool has_untrained = false;
  RetrievalMetrics untrained, best, last;  // meaningful on rank 0
  bool has_best = false, has_last = false;
  int64_t best_epoch = -1;
  int64_t steps_run = 0;
  bool stopped_by_signal = false;
  double images_per_sec = 0;
  // With RunConfig::time_phases: seconds spent in each phase of the training steps (data_wait,
  // forward, gather, sampling_loss, backward, allreduce, optimizer, log), summed over steps_run.
  std::vector<std::pair<std::string, double>> phase_seconds;
};

class Trainer {
 public:
  // Opens the data, builds and synchronises the model, optimisers and loaders, and restores
  // config.run.resume; validates everything that needs the data before any training work. The
  // configuration comes complete from the edge (make_train_config); the Trainer sets only the fields
  // that depend on the job (see TrainConfig).
  Trainer(const TrainConfig& config, Communicator& comm);
  ~Trainer();
  TrainSummary run();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace dml
