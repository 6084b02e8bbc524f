#pragma once
// Step learning-rate schedule of the reference (set at the start of every epoch, for the network
// and the beta optimiser alike).
#include <cstdint>
#include <vector>

namespace dml {

// The reference's step schedule: both learning rates are multiplied by `factor` at each epoch in
// `step_epochs` (epochs counted from 0).
struct LrSchedule {
  double factor = 0.5;
  std::vector<int64_t> step_epochs = {12, 14, 16, 18};
};

// factor > 0 and every step epoch >= 0. Throws OptionError("factor" or "step_epochs").
void validate_lr_schedule(double factor, const std::vector<int64_t>& step_epochs);

// lr(e) = base_lr * factor^{#{s in step_epochs : epoch >= s}}, epochs counted from 0.
// Reference defaults (base 1e-4, factor 0.5, steps {12,14,16,18}): epochs 0-11 -> 1e-4,
// 12-13 -> 5e-5, 14-15 -> 2.5e-5, 16-17 -> 1.25e-5, 18+ -> 6.25e-6.
// step_epochs need not be sorted; a repeated epoch counts twice. Throws dml::Error when
// base_lr < 0, factor <= 0 or epoch < 0.
double scheduled_lr(double base_lr, double factor, const std::vector<int64_t>& step_epochs, int64_t epoch);

}  // namespace dml
