#include "optim/adam_kernel.h"

#include <cmath>

namespace dml::optim_kernels {

// The arithmetic, in the same order, of Optimizer::update's tensor ops (see optimizer.cpp).
void adam_chunk(float* __restrict param, const float* __restrict grad, float* __restrict m, float* __restrict v,
                int64_t begin, int64_t end, const AdamScalars& s) {
  const float rescale = s.rescale, wd = s.wd, b1 = s.b1, b2 = s.b2, c1 = s.one_minus_b1, c2 = s.one_minus_b2;
  const float eps = s.eps, lr_t = s.lr_t, decay = s.decay;
  if (!s.decoupled) {
    for (int64_t i = begin; i < end; ++i) {
      const float g = grad[i] * rescale + wd * param[i];
      const float mi = m[i] * b1 + c1 * g;
      const float vi = v[i] * b2 + c2 * (g * g);
      m[i] = mi;
      v[i] = vi;
      param[i] = param[i] + (-lr_t) * (mi / (std::sqrt(vi) + eps));
    }
  } else {
    for (int64_t i = begin; i < end; ++i) {
      const float g = grad[i] * rescale;
      const float mi = m[i] * b1 + c1 * g;
      const float vi = v[i] * b2 + c2 * (g * g);
      m[i] = mi;
      v[i] = vi;
      param[i] = param[i] - ((mi / (std::sqrt(vi) + eps)) * lr_t + decay * param[i]);
    }
  }
}

}  // namespace dml::optim_kernels
