#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011): every draw is a pure function
// of (seed, stream, step, index, draw), so any rank can reproduce any other rank's draws and the
// result does not depend on how work is split across ranks or threads. No hidden state.
#include <array>
#include <cstdint>

#include <c10/core/Device.h>

namespace at {
class Tensor;
}

namespace dml {

// What a draw is for; keeps the streams of different consumers independent.
enum class RngStream : uint32_t {
  kClasses = 1,       // global class list of a step
  kImages = 2,        // images within a class
  kAugment = 3,       // flip and crop offsets of one sample
  kNegatives = 4,     // distance-weighted negative draws of one anchor
  kInit = 5,          // weight initialisation
  kEval = 6,          // k-means initialisation in evaluation
};

struct RngKey {
  uint64_t seed = 0;
  RngStream stream = RngStream::kClasses;
  uint64_t step = 0;  // low 32 bits are used
};

// The raw Philox4x32-10 block function.
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// 32 random bits for (key, index, draw).
uint32_t random_u32(const RngKey& key, uint64_t index, uint32_t draw);
// Uniform in [0, 1) with 24-bit resolution, exactly representable in float32.
double random_uniform(const RngKey& key, uint64_t index, uint32_t draw);
// Uniform integer in [0, n), n > 0 (multiply-shift, bias < n / 2^32).
uint32_t random_below(const RngKey& key, uint64_t index, uint32_t draw, uint32_t n);

// Tensor version of random_uniform: indices int64 [N] (any device) -> float32 [N, draws] on the
// same device, element (i, d) == random_uniform(key, indices[i], d) exactly. No host sync. Host
// indices are drawn by the scalar function; device indices by Philox in tensor ops (~200 kernels).
at::Tensor random_uniform_tensor(const RngKey& key, const at::Tensor& indices, int64_t draws);
// Its device algorithm (Philox in tensor ops) on whatever device the indices are, e.g. for tests on
// the CPU.
at::Tensor random_uniform_tensor_ops(const RngKey& key, const at::Tensor& indices, int64_t draws);
// The same for the indices first .. first+count-1, known on the host: drawn there (a few hundred
// numbers per step cost microseconds) and copied to `device` from pinned memory without waiting.
at::Tensor random_uniform_range(const RngKey& key, int64_t first, int64_t count, int64_t draws, const c10::Device& device);

}  // namespace dml
