#pragma once
// Dynamic loss scaling for fp16 training (the scheme of PyTorch's GradScaler): the loss is
// multiplied by scale() before backward so that small gradients do not underflow in fp16, the
// gradients are divided by it before the optimiser step, and a step whose gradients overflowed
// (inf or NaN) is skipped while the scale halves. After growth_interval finite steps in a row the
// scale doubles. bf16 and fp32 need none of this (bf16 has fp32's exponent range).
#include <cstdint>

namespace dml {

struct LossScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class LossScaler {
 public:
  explicit LossScaler(const LossScalerOptions& options = {});
  double scale() const { return scale_; }
  // After a step's gradients were checked: overflow -> the step was skipped, scale *= backoff;
  // otherwise one more finite step, and every growth_interval of them in a row scale *= growth.
  void update(bool overflowed);
  int64_t overflowed_steps() const { return overflowed_steps_; }

 private:
  LossScalerOptions options_;
  double scale_;
  int64_t finite_streak_ = 0;
  int64_t overflowed_steps_ = 0;
};

}  // namespace dml
