#include "dml/train/train_config.h"

#include "dml/util/error.h"

namespace dml {

void validate_run_config(const RunConfig& run) {
  auto positive = [](int64_t value, const char* field) {
    check_option(value > 0, field, field, " is ", value, "; it must be positive");
  };
  positive(run.epochs, "epochs");
  positive(run.iterations_per_epoch, "iterations_per_epoch");
  positive(run.log_interval, "log_interval");
  positive(run.eval_interval, "eval_interval");
  check_option(run.max_steps >= 0, "max_steps", "max_steps is ", run.max_steps, "; use 0 for no limit");
  check_option(!run.save_model_prefix.empty(), "save_model_prefix",
               "the save prefix is empty; name where <prefix>-best.pt and <prefix>-last.pt go");
}

}  // namespace dml
