#include "dml/optim/lr_schedule.h"

#include "dml/util/error.h"

namespace dml {

void validate_lr_schedule(double factor, const std::vector<int64_t>& step_epochs) {
  check_option(factor > 0, "factor", "learning-rate schedule: factor is ", factor,
               "; use a factor > 0 (0.5 halves the rate)");
  for (int64_t s : step_epochs) {
    check_option(s >= 0, "step_epochs", "learning-rate schedule: step epoch ", s, "; epochs are counted from 0");
  }
}

double scheduled_lr(double base_lr, double factor, const std::vector<int64_t>& step_epochs, int64_t epoch) {
  check(base_lr >= 0, "scheduled_lr: base learning rate is ", base_lr, "; use a learning rate >= 0");
  validate_lr_schedule(factor, step_epochs);
  check(epoch >= 0, "scheduled_lr: epoch is ", epoch, "; epochs are counted from 0");
  // Repeated multiplication (not pow) so the result is exactly what MXNet's
  // `lr = lr * factor` per step produces.
  double lr = base_lr;
  for (int64_t s : step_epochs) {
    if (epoch >= s) lr *= factor;
  }
  return lr;
}

}  // namespace dml
