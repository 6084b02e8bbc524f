#include "dml/optim/loss_scaler.h"

#include "dml/util/error.h"

namespace dml {

LossScaler::LossScaler(const LossScalerOptions& options) : options_(options), scale_(options.init_scale) {
  check(options.init_scale > 0 && options.growth_factor > 1 && options.backoff_factor > 0 &&
            options.backoff_factor < 1 && options.growth_interval > 0,
        "LossScaler: init_scale ", options.init_scale, ", growth_factor ", options.growth_factor, ", backoff_factor ",
        options.backoff_factor, ", growth_interval ", options.growth_interval,
        ": need a positive scale, growth > 1, 0 < backoff < 1 and a positive interval");
}

void LossScaler::update(bool overflowed) {
  if (overflowed) {
    scale_ *= options_.backoff_factor;
    finite_streak_ = 0;
    ++overflowed_steps_;
    return;
  }
  if (++finite_streak_ == options_.growth_interval) {
    scale_ *= options_.growth_factor;
    finite_streak_ = 0;
  }
}

}  // namespace dml
