#include "dist/tensor_agreement.h"

#include <sstream>

#include "dml/util/error.h"

namespace dml::dist {
namespace {

enum Problem : int64_t { kOk = 0, kUndefined = 1, kUnsupportedDtype = 2, kWrongDevice = 3, kTooManyDims = 4 };
enum Word { kProblem = 0, kDtype = 1, kNdim = 2, kDevice = 3, kRoot = 4, kOp = 5, kDims = 6 };

// Device codes in signatures: -1 CPU, k CUDA k, -2 anything else.
int64_t device_code(const at::Tensor& t) {
  if (t.device().is_cpu()) return -1;
  if (t.device().is_cuda()) return t.device().index() < 0 ? 0 : t.device().index();
  return -2;
}

std::string device_text(int64_t code) {
  if (code == -1) return "cpu";
  if (code >= 0) return str("cuda:", code);
  return "a non-CPU, non-CUDA device";
}

std::string shape_text(const TensorSignature& s) {
  std::ostringstream out;
  out << c10::toString(static_cast<at::ScalarType>(s[kDtype])) << " [";
  for (int64_t d = 0; d < s[kNdim]; ++d) out << (d ? ", " : "") << s[kDims + d];
  out << "]";
  return out.str();
}

std::string problem_text(const TensorSignature& s, const AgreementRules& rules) {
  switch (s[kProblem]) {
    case kUndefined: return "the tensor is undefined; pass a defined tensor";
    case kUnsupportedDtype:
      return str("dtype ", c10::toString(static_cast<at::ScalarType>(s[kDtype])), " is not supported; use float32, ",
                 "float64, int64, int32 or uint8", rules.allow_half ? ", float16 or bfloat16" : "");
    case kWrongDevice:
      return str("the tensor is on ", device_text(s[kDevice]), " but the ", rules.backend, " backend needs ",
                 device_text(rules.required_device), " tensors; move it with .to() first");
    case kTooManyDims: return str("the tensor has more than ", kMaxDims, " dimensions; flatten it first");
    default: return "unknown problem";
  }
}

// "all_gather", "broadcast (root 1)", or "unknown operation 7" for a word no build writes.
std::string call_text(const TensorSignature& s) {
  const int64_t code = s[kOp];
  if (code < 0 || code > static_cast<int64_t>(CollectiveOp::kBarrier)) return str("unknown operation ", code);
  const auto op = static_cast<CollectiveOp>(code);
  if (op == CollectiveOp::kBroadcast) return str(op_name(op), " (root ", s[kRoot], ")");
  return op_name(op);
}

std::string differing_ranks(const std::vector<TensorSignature>& table) {
  std::ostringstream out;
  out << "rank 0 has " << shape_text(table[0]);
  int listed = 0;
  for (size_t r = 1; r < table.size() && listed < 8; ++r) {
    if (table[r] != table[0]) {
      out << ", rank " << r << " has " << shape_text(table[r]);
      ++listed;
    }
  }
  return out.str();
}

}  // namespace

const char* op_name(CollectiveOp op) {
  switch (op) {
    case CollectiveOp::kAllReduce: return "all_reduce_sum";
    case CollectiveOp::kAllGather: return "all_gather";
    case CollectiveOp::kReduceScatter: return "reduce_scatter_sum";
    case CollectiveOp::kBroadcast: return "broadcast";
    case CollectiveOp::kBarrier: return "barrier";
  }
  return "collective";
}

TensorSignature describe_barrier() {
  TensorSignature s{};
  s[kOp] = static_cast<int64_t>(CollectiveOp::kBarrier);
  return s;
}

TensorSignature describe_tensor(const at::Tensor& tensor, const AgreementRules& rules, int root, CollectiveOp op) {
  TensorSignature s{};
  s[kRoot] = root;
  s[kOp] = static_cast<int64_t>(op);
  if (!tensor.defined()) {
    s[kProblem] = kUndefined;
    return s;
  }
  const at::ScalarType dtype = tensor.scalar_type();
  s[kDtype] = static_cast<int64_t>(dtype);
  s[kDevice] = device_code(tensor);
  s[kNdim] = std::min<int64_t>(tensor.dim(), kMaxDims);
  for (int64_t d = 0; d < s[kNdim]; ++d) s[kDims + d] = tensor.size(d);
  const bool basic = dtype == at::kFloat || dtype == at::kDouble || dtype == at::kLong || dtype == at::kInt ||
                     dtype == at::kByte;
  const bool half = dtype == at::kHalf || dtype == at::kBFloat16;
  if (!basic && !(half && rules.allow_half)) {
    s[kProblem] = kUnsupportedDtype;
  } else if (rules.required_device != kAnyDevice && s[kDevice] != rules.required_device) {
    s[kProblem] = kWrongDevice;
  } else if (tensor.dim() > kMaxDims) {
    s[kProblem] = kTooManyDims;
  }
  return s;
}

void check_agreement(CollectiveOp op, const std::vector<TensorSignature>& table, const AgreementRules& rules) {
  const int world = static_cast<int>(table.size());
  // Different operations first, with a message that does not depend on this rank's own call.
  bool same_op = true;
  for (int r = 1; r < world; ++r) same_op = same_op && table[r][kOp] == table[0][kOp];
  if (!same_op) {
    std::ostringstream calls;
    for (int r = 0, listed = 0; r < world && listed < 8; ++r) {
      if (r > 0 && table[r][kOp] == table[0][kOp]) continue;
      calls << (r ? ", " : "") << "rank " << r << " called " << call_text(table[r]);
      if (r > 0) ++listed;
    }
    throw Error(str("dist/", rules.backend, ": ranks called different collectives (", calls.str(),
                    "); every rank must issue the same collectives in the same order"));
  }
  if (op == CollectiveOp::kBarrier) return;
  const std::string where = str("dist/", rules.backend, " ", op_name(op), ": ");
  for (int r = 0; r < world; ++r) {
    check(table[r][kProblem] == kOk, where, "rank ", r, ": ", problem_text(table[r], rules));
  }
  for (int r = 1; r < world; ++r) {
    check(table[r][kRoot] == table[0][kRoot], where, "ranks passed different roots (rank 0: ", table[0][kRoot],
          ", rank ", r, ": ", table[r][kRoot], "); every rank must name the same root");
  }
  if (op == CollectiveOp::kBroadcast) {
    check(table[0][kRoot] >= 0 && table[0][kRoot] < world, where, "root ", table[0][kRoot],
          " is not a rank (world size ", world, "); pass a root in [0, ", world, ")");
  }
  // Device codes may legitimately differ (nccl: each rank its own GPU); compare dtype and shape.
  std::vector<TensorSignature> shapes = table;
  for (auto& s : shapes) s[kDevice] = 0;
  bool same = true;
  for (int r = 1; r < world; ++r) same = same && shapes[r] == shapes[0];
  if (!same) {
    const char* fix = op == CollectiveOp::kAllGather
                          ? "all_gather needs the same shape on every rank: pad to a common row count first "
                            "(agree on it with all_gather of a [1] int64 tensor of sizes)"
                          : "every rank must pass the same shape and dtype";
    throw Error(str(where, "shapes differ across ranks (", differing_ranks(shapes), "); ", fix));
  }
  if (op == CollectiveOp::kReduceScatter) {
    check(table[0][kNdim] >= 1, where, "the tensor is a scalar; it needs a first dimension of world_size*n rows");
    check(table[0][kDims] % world == 0, where, "first dimension ", table[0][kDims],
          " is not divisible by the world size ", world, "; pad it to a multiple of ", world);
  }
}

}  // namespace dml::dist
