// The one-process backend: world size 1, every collective is the identity. Tensors may live on any
// device (single-process debug runs on CPU or one GPU). Validation matches the other backends so a
// program that runs here does not fail for dtype reasons under MPI.
#include <cstdio>
#include <cstdlib>

#include "dist/backend_factories.h"
#include "dist/tensor_agreement.h"
#include "dml/util/error.h"

namespace dml::dist {
namespace {

class SingleCommunicator final : public Communicator {
 public:
  std::string backend_name() const override { return "single"; }
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  int cuda_device() const override { return -1; }

  void all_reduce_sum(at::Tensor& tensor) override { agree(CollectiveOp::kAllReduce, tensor, 0); }

  at::Tensor all_gather(const at::Tensor& tensor) override {
    agree(CollectiveOp::kAllGather, tensor, 0);
    at::Tensor out = tensor.clone(at::MemoryFormat::Contiguous);
    return tensor.dim() == 0 ? out.reshape({1}) : out;  // a scalar gathers into [world], as under MPI
  }

  at::Tensor reduce_scatter_sum(const at::Tensor& tensor) override {
    agree(CollectiveOp::kReduceScatter, tensor, 0);
    return tensor.clone(at::MemoryFormat::Contiguous);
  }

  void broadcast(at::Tensor& tensor, int root) override { agree(CollectiveOp::kBroadcast, tensor, root); }

  void barrier() override {}

  [[noreturn]] void abort(int exit_code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(exit_code);
  }

 private:
  void agree(CollectiveOp op, const at::Tensor& tensor, int root) {
    check_agreement(op, {describe_tensor(tensor, rules_, root, op)}, rules_);
  }
  AgreementRules rules_{"single", kAnyDevice, /*allow_half=*/true};
};

}  // namespace

std::unique_ptr<Communicator> make_single_communicator() { return std::make_unique<SingleCommunicator>(); }

}  // namespace dml::dist
