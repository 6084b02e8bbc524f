#include "dml/dist/all_gather.h"

#include <cstdint>

namespace dml {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Forward: rank-major all_gather. Backward: the gradient of the gathered tensor on rank q is
// dL_q/dG; the gradient of rank r's x is sum over q of block r of dL_q/dG, which is exactly
// reduce_scatter_sum's block for rank r.
class AllGatherWithGrad : public torch::autograd::Function<AllGatherWithGrad> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t comm_address) {
    ctx->saved_data["comm"] = comm_address;
    ctx->saved_data["sizes"] = x.sizes().vec();
    return reinterpret_cast<Communicator*>(comm_address)->all_gather(x.contiguous());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    const std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    torch::Tensor grad = comm->reduce_scatter_sum(grad_outputs[0].contiguous());
    return {grad.view(sizes), torch::Tensor()};
  }
};

}  // namespace

at::Tensor all_gather_with_grad(Communicator& comm, const at::Tensor& x) {
  return AllGatherWithGrad::apply(x, static_cast<int64_t>(reinterpret_cast<intptr_t>(&comm)));
}

}  // namespace dml
