#pragma once
// Private: the device on which small helper tensors (flags, counts, hashes) must be created for a
// communicator: its CUDA device for "nccl", else the CPU.
#include <torch/types.h>

#include "dml/dist/communicator.h"

namespace dml::dist {

inline torch::Device comm_device(const Communicator& comm) {
  const int cuda = comm.cuda_device();
  return cuda >= 0 ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(cuda)) : torch::Device(torch::kCPU);
}

}  // namespace dml::dist
