#pragma once
// Private to train/: the per-step losses between two log records, and the check that every step's
// loss and gradients are finite. Both stay on the device until a log record, an evaluation or a
// checkpoint (flush, one small all-reduce), so a step costs no host synchronisation, except with
// --skip-nonfinite, where the decision to skip must be known before the optimiser step.
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "dml/dist/communicator.h"

namespace dml {

// What the steps since the last take() add up to (global: summed over ranks).
struct LossWindowSummary {
  int64_t steps = 0;    // steps recorded
  int64_t skipped = 0;  // of them, skipped as non-finite (--skip-nonfinite)
  double loss = 0;      // mean global loss of the finite steps (NaN when every step was skipped)
};

class LossWindow {
 public:
  // capacity: the most steps recorded between two flushes (the log interval). `where` says what the
  // run keeps when it stops (e.g. "the checkpoints keep the last good state"), for the message.
  LossWindow(Communicator& comm, torch::Device device, int64_t capacity, bool skip_nonfinite, std::string where);

  // Step `step` (1-based, as logged): this rank's share of the loss, and `finite`, a bool scalar on
  // the device (this rank's loss and the all-reduced gradients are finite). Returns true when the
  // step must be skipped: only with skip_nonfinite, when any rank found it non-finite (one host read
  // and one collective). Without skip_nonfinite it returns false and queues the check for flush().
  bool record(int64_t step, const torch::Tensor& loss_share, const torch::Tensor& finite);

  // Collective. Brings the recorded steps to the host. Without skip_nonfinite, a non-finite step
  // throws dml::Error on rank 0 naming the step and the last finite loss; the other ranks then wait
  // in a barrier for the job to end (one message, not one per rank).
  void flush();

  // Collective (flushes first): the summary since the last take(), then starts a new one.
  LossWindowSummary take();

  int64_t skipped_total() const { return skipped_total_; }

 private:
  Communicator& comm_;
  bool skip_;
  std::string where_;
  torch::Tensor slots_;  // [capacity, 2] float64 on the device: loss share, 1 when non-finite
  int64_t used_ = 0, first_step_ = 0;
  LossWindowSummary pending_;
  double pending_loss_sum_ = 0;
  int64_t skipped_total_ = 0;
  double last_finite_loss_ = 0;
  int64_t last_finite_step_ = -1;
};

}  // namespace dml
