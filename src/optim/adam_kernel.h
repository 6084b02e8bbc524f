#pragma once
// Private to optim/: the element loop of the fused CPU Adam/AdamW step, in a file of its own so it
// can be compiled without errno for sqrt (-fno-math-errno, set in CMakeLists.txt): otherwise the
// compiler keeps one scalar square root per element and cannot vectorise the loop. No torch here.
#include <cstdint>

namespace dml::optim_kernels {

struct AdamScalars {
  float rescale, wd, b1, b2, one_minus_b1, one_minus_b2, eps, lr_t, decay;
  bool decoupled;  // AdamW: weight decay applied to the weights, not added to the gradient
};

// Elements [begin, end) of one parameter: moments m, v and the weight updated in place.
void adam_chunk(float* param, const float* grad, float* m, float* v, int64_t begin, int64_t end, const AdamScalars& s);

}  // namespace dml::optim_kernels
