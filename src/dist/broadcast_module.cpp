// Broadcast of a module's parameters and buffers as raw bytes: every tensor of a device is packed
// into one uint8 buffer, so any dtype (bool and half buffers included) travels exactly, in one
// collective per device rather than one per tensor.
#include "dml/dist/broadcast_module.h"

#include <map>

#include "dml/util/error.h"

namespace dml {

void broadcast_module(Communicator& comm, torch::nn::Module& module, int root) {
  check_same_module(comm, module, "broadcast_module");
  if (comm.world_size() == 1) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors;
  for (auto& t : module.parameters(/*recurse=*/true)) tensors.push_back(t);
  for (auto& t : module.buffers(/*recurse=*/true)) {
    if (t.defined()) tensors.push_back(t);
  }
  if (tensors.empty()) return;
  // Group by device, in first-appearance order (identical on every rank after the check above).
  std::vector<torch::Device> devices;
  std::map<std::string, std::vector<torch::Tensor>> groups;
  for (auto& t : tensors) {
    auto& group = groups[t.device().str()];
    if (group.empty()) devices.push_back(t.device());
    group.push_back(t);
  }
  for (const torch::Device& device : devices) {
    std::vector<torch::Tensor>& group = groups[device.str()];
    std::vector<torch::Tensor> bytes;
    for (auto& t : group) bytes.push_back(t.contiguous().view({-1}).view(torch::kByte));
    torch::Tensor packed = torch::cat(bytes);
    comm.broadcast(packed, root);
    int64_t offset = 0;
    for (auto& t : group) {
      const int64_t n = t.numel() * static_cast<int64_t>(t.element_size());
      // Write through a byte view of the destination: a byte slice of `packed` may not be aligned
      // for viewing it as a wider dtype.
      torch::Tensor dst = t.is_contiguous() ? t : t.contiguous();
      dst.view({-1}).view(torch::kByte).copy_(packed.narrow(0, offset, n));
      if (!dst.is_same(t)) t.copy_(dst);
      offset += n;
    }
  }
}

}  // namespace dml
