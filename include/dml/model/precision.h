#pragma once
// Forward precision and memory layout of the backbone. The convolutions run in the chosen precision
// under autocast; master weights, gradients, optimiser state, pooling, head, normalisation,
// sampling and loss stay float32. bf16 works on CPUs and GPUs (on this kind of CPU, AVX512-BF16,
// about 2x fp32); fp16 only on CUDA, with a loss scaler against gradient underflow.
// Channels-last (NHWC) stores 4-D weights and activations so the convolution kernels need no
// layout conversions.
#include <c10/core/Device.h>

#include <string>

namespace dml {

enum class Precision { kFp32, kBf16, kFp16 };

// "fp32", "bf16", "fp16" -> Precision; anything else -> OptionError("precision") listing them.
Precision parse_precision(const std::string& name);
std::string precision_name(Precision precision);

// fp16 needs CUDA: OptionError("precision") naming the fix for a CPU device.
void check_precision_supported(Precision precision, const c10::Device& device);

// Autocast to `precision` on `device` for the scope (nothing for fp32); restores the previous state
// and, leaving the outermost autocast scope, clears autocast's cache of cast weights.
class AutocastScope {
 public:
  AutocastScope(Precision precision, const c10::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool was_enabled_ = false;
  int previous_dtype_ = 0;
};

}  // namespace dml
