#include "dml/train/devices.h"

#include <torch/torch.h>

#include <algorithm>
#include <thread>

#include "dml/dist/communicator.h"
#include "dml/util/error.h"

namespace dml {

std::vector<torch::Device> plan_replica_devices(const DeviceRequest& request, int local_rank, int device_count) {
  using Kind = DeviceRequest::Kind;
  std::vector<int> indices;
  switch (request.kind) {
    case Kind::kAuto:
      if (device_count > 0) return {torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % device_count))};
      [[fallthrough]];
    case Kind::kCpu: {
      check_option(request.cpu_replicas >= 1, "cpu_replicas", "CPU replicas per rank: ", request.cpu_replicas,
                   "; use at least 1");
      return std::vector<torch::Device>(static_cast<size_t>(request.cpu_replicas), torch::Device(torch::kCPU));
    }
    case Kind::kGpuList:
      check_option(!request.gpus.empty(), "gpus", "no GPU index given");
      indices = request.gpus;
      break;
    case Kind::kGpusPerRank:
      check_option(request.gpus_per_rank >= 1, "gpus_per_rank", "GPUs per rank: ", request.gpus_per_rank,
                   "; use at least 1");
      for (int j = 0; j < request.gpus_per_rank; ++j) indices.push_back(local_rank * request.gpus_per_rank + j);
      break;
  }
  const char* field = request.kind == Kind::kGpuList ? "gpus" : "gpus_per_rank";
  check_option(device_count > 0, field, "CUDA is not available (this build or node has no GPU); use the CPU");
  std::vector<torch::Device> devices;
  for (int index : indices) {
    check_option(index >= 0 && index < device_count, field, "local rank ", local_rank, " would drive GPU ", index,
                 ", but this node has ", device_count, " GPUs (0..", device_count - 1, ")");
    check_option(std::count(indices.begin(), indices.end(), index) == 1, field, "GPU ", index,
                 " is listed twice; a GPU holds one replica");
    devices.emplace_back(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return devices;
}

std::vector<torch::Device> resolve_replica_devices(const DeviceRequest& request, int local_rank) {
  const int count = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  return plan_replica_devices(request, local_rank, count);
}

void check_replica_devices(const std::vector<torch::Device>& devices, Communicator& comm) {
  check(!devices.empty(), "devices: this rank has no replica");
  const torch::Device& first = devices.front();
  if (first.is_cuda() && comm.world_size() > 1) {
    check(comm.cuda_device() >= 0, "devices: GPU replicas on several ranks need a communicator on the GPU (NCCL), ",
          "but this run uses '", comm.backend_name(), "', whose tensors live in host memory; build dml with a CUDA ",
          "LibTorch and NCCL (cluster/BUILD_CUDA.md), or train on the CPU");
    check(first.index() == comm.cuda_device(), "devices: rank ", comm.rank(), " (local rank ", comm.local_rank(),
          ") has its communicator on cuda:", comm.cuda_device(), " but its first replica on ", first.str(),
          "; list that GPU first");
  }
  torch::Tensor count = torch::tensor({static_cast<int64_t>(devices.size())});
  if (comm.cuda_device() >= 0) count = count.to(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(comm.cuda_device())));
  const torch::Tensor all = comm.all_gather(count).to(torch::kCPU);
  check(all.min().item<int64_t>() == all.max().item<int64_t>(), "devices: ranks drive different numbers of replicas (",
        all.min().item<int64_t>(), " to ", all.max().item<int64_t>(), "); give every rank the same number of devices");
}

int resolve_thread_count(int requested, int local_size) {
  if (requested > 0) return requested;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, local_size));
}

}  // namespace dml
