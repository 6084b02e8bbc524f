#pragma once
// Private: the small metadata exchange that precedes every collective. Each rank describes its
// call in a fixed-size signature (problem code, dtype, rank count, device, root, operation, dims); the
// backend all-gathers the signatures (a few hundred bytes) and every rank runs check_agreement()
// on the same table, so a mismatch throws the same dml::Error on every rank instead of hanging.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace dml::dist {

enum class CollectiveOp { kAllReduce, kAllGather, kReduceScatter, kBroadcast, kBarrier };
const char* op_name(CollectiveOp op);

constexpr int kMaxDims = 8;
constexpr int kSignatureWords = 6 + kMaxDims;
// Words: [problem, dtype, ndim, device, root, op, dim0 .. dim7]; unused dims are 0.
using TensorSignature = std::array<int64_t, kSignatureWords>;

// Device rules: kHostDevice = CPU only; k >= 0 = CUDA device k only; kAnyDevice = anything.
constexpr int kHostDevice = -1;
constexpr int kAnyDevice = -100;

struct AgreementRules {
  std::string backend;      // for messages: "mpi", "nccl", "single"
  int required_device = kAnyDevice;
  bool allow_half = false;  // float16 / bfloat16 accepted (nccl)
};

// Describes this rank's tensor; never throws (problems are reported through the signature so that
// every rank learns about them).
// `op` is the collective this rank is calling (the default keeps hand-made tables short).
TensorSignature describe_tensor(const at::Tensor& tensor, const AgreementRules& rules, int root,
                                CollectiveOp op = CollectiveOp::kAllReduce);
// A barrier's signature: no tensor, only the operation.
TensorSignature describe_barrier();

// table[r] = rank r's signature. Throws dml::Error naming the op, the offending rank(s) and the
// fix when: ranks call different operations (the message names each rank's operation, broadcast
// with its root, and is the same on every rank); any rank reported a problem; dtypes or shapes differ; (reduce_scatter) the tensor has
// no dimension or its first dimension is not divisible by the world size; (broadcast) roots differ
// or the root is not a rank.
void check_agreement(CollectiveOp op, const std::vector<TensorSignature>& table, const AgreementRules& rules);

}  // namespace dml::dist
