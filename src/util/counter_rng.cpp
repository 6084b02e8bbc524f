#include "dml/util/counter_rng.h"

#include <torch/torch.h>

namespace dml {
namespace {
constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;
constexpr uint32_t kWeyl1 = 0xBB67AE85u;
constexpr int kRounds = 10;

// Counter layout shared by the scalar and tensor versions: (index lo, index hi, draw, step),
// key = (seed lo ^ stream-mix, seed hi).
std::array<uint32_t, 4> counter_of(const RngKey& key, uint64_t index, uint32_t draw) {
  return {static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), draw,
          static_cast<uint32_t>(key.step)};
}

std::array<uint32_t, 2> key_of(const RngKey& key) {
  const uint32_t stream_mix = static_cast<uint32_t>(key.stream) * 0x85EBCA6Bu;
  return {static_cast<uint32_t>(key.seed) ^ stream_mix, static_cast<uint32_t>(key.seed >> 32)};
}

constexpr double kTwoPowMinus24 = 1.0 / 16777216.0;
}  // namespace

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kWeyl0;
    k[1] += kWeyl1;
  }
  return c;
}

uint32_t random_u32(const RngKey& key, uint64_t index, uint32_t draw) {
  return philox4x32_10(counter_of(key, index, draw), key_of(key))[0];
}

double random_uniform(const RngKey& key, uint64_t index, uint32_t draw) {
  return static_cast<double>(random_u32(key, index, draw) >> 8) * kTwoPowMinus24;
}

uint32_t random_below(const RngKey& key, uint64_t index, uint32_t draw, uint32_t n) {
  return static_cast<uint32_t>((static_cast<uint64_t>(random_u32(key, index, draw)) * n) >> 32);
}

namespace {
// 32-bit words live in int64 tensors; products are split into 16-bit halves so nothing
// overflows int64. Returns (hi, lo) words of the 64-bit product a * m.
std::pair<torch::Tensor, torch::Tensor> mul_hi_lo(const torch::Tensor& a, uint32_t m) {
  const int64_t mask16 = 0xFFFF, mask32 = 0xFFFFFFFFLL;
  const torch::Tensor a_hi = torch::bitwise_right_shift(a, 16);
  const torch::Tensor a_lo = torch::bitwise_and(a, mask16);
  const torch::Tensor hi_part = a_hi * static_cast<int64_t>(m);  // < 2^48
  const torch::Tensor lo_part = a_lo * static_cast<int64_t>(m);  // < 2^48
  const torch::Tensor hi =
      torch::bitwise_right_shift(hi_part + torch::bitwise_right_shift(lo_part, 16), 16);
  const torch::Tensor lo =
      torch::bitwise_and(torch::bitwise_left_shift(torch::bitwise_and(hi_part, mask16), 16) + lo_part,
                         mask32);
  return {hi, lo};
}
}  // namespace

at::Tensor random_uniform_range(const RngKey& key, int64_t first, int64_t count, int64_t draws, const c10::Device& device) {
  TORCH_CHECK(first >= 0 && count >= 0 && draws >= 0, "random_uniform_range: negative first, count or draws");
  const bool to_cuda = device.is_cuda();
  torch::Tensor host = torch::empty({count, draws}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(to_cuda));
  float* out = host.data_ptr<float>();
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t d = 0; d < draws; ++d) {
      out[i * draws + d] = static_cast<float>(random_uniform(key, static_cast<uint64_t>(first + i), static_cast<uint32_t>(d)));
    }
  }
  return to_cuda ? host.to(device, /*non_blocking=*/true) : host;
}

at::Tensor random_uniform_tensor(const RngKey& key, const at::Tensor& indices, int64_t draws) {
  TORCH_CHECK(indices.dim() == 1, "random_uniform_tensor: indices must be 1-D");
  if (indices.device().is_cpu()) {  // host indices: the scalar function, no tensor kernels
    const torch::Tensor index = indices.to(torch::kInt64).contiguous();
    const int64_t* in = index.data_ptr<int64_t>();
    torch::Tensor u = torch::empty({index.size(0), draws}, torch::kFloat32);
    float* out = u.data_ptr<float>();
    for (int64_t i = 0; i < index.size(0); ++i) {
      for (int64_t d = 0; d < draws; ++d) {
        out[i * draws + d] = static_cast<float>(random_uniform(key, static_cast<uint64_t>(in[i]), static_cast<uint32_t>(d)));
      }
    }
    return u;
  }
  return random_uniform_tensor_ops(key, indices, draws);
}

at::Tensor random_uniform_tensor_ops(const RngKey& key, const at::Tensor& indices, int64_t draws) {
  TORCH_CHECK(indices.dim() == 1, "random_uniform_tensor_ops: indices must be 1-D");
  const auto opts = indices.options().dtype(torch::kInt64);
  const int64_t mask32 = 0xFFFFFFFFLL;
  const torch::Tensor index = indices.to(torch::kInt64).unsqueeze(1).expand({-1, draws});
  std::array<torch::Tensor, 4> c;
  c[0] = torch::bitwise_and(index, mask32);
  c[1] = torch::bitwise_and(torch::bitwise_right_shift(index, 32), mask32);
  c[2] = torch::arange(draws, opts).unsqueeze(0).expand({index.size(0), -1});
  c[3] = torch::full_like(index, static_cast<int64_t>(static_cast<uint32_t>(key.step)));
  std::array<uint32_t, 2> k = key_of(key);
  for (int round = 0; round < kRounds; ++round) {
    auto [hi0, lo0] = mul_hi_lo(c[0], kMul0);
    auto [hi1, lo1] = mul_hi_lo(c[2], kMul1);
    c = {torch::bitwise_xor(torch::bitwise_xor(hi1, c[1]), static_cast<int64_t>(k[0])), lo1,
         torch::bitwise_xor(torch::bitwise_xor(hi0, c[3]), static_cast<int64_t>(k[1])), lo0};
    k[0] += kWeyl0;
    k[1] += kWeyl1;
  }
  return torch::bitwise_right_shift(c[0], 8).to(torch::kFloat64).mul(kTwoPowMinus24).to(torch::kFloat32);
}

}  // namespace dml
