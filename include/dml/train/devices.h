#pragma once
// Which devices this rank's replicas run on. Resolved once, at start-up, from the device request and
// the launcher's local rank (before the communicator exists, which needs to know whether its tensors
// live on a GPU); the Trainer receives the result and checks it across ranks.
#include <c10/core/Device.h>

#include <vector>

namespace dml {

class Communicator;

struct DeviceRequest {
  enum class Kind {
    kAuto,         // the GPU of the local rank when this node has one, else the CPU
    kCpu,          // cpu_replicas replicas on the CPU
    kGpuList,      // the GPUs in `gpus`, one replica each (one process per node)
    kGpusPerRank,  // local rank r drives GPUs r*gpus_per_rank .. r*gpus_per_rank + gpus_per_rank - 1
  };
  Kind kind = Kind::kAuto;
  std::vector<int> gpus;   // kGpuList
  int gpus_per_rank = 1;   // kGpusPerRank
  int cpu_replicas = 1;    // kCpu, and kAuto on a node without a GPU
};

// The replica devices for a process of local rank `local_rank` on a node with `device_count` CUDA
// devices (0 = none). A pure function, so the mapping is testable without a GPU. Throws OptionError
// ("gpus", "gpus_per_rank" or "cpu_replicas") for a GPU request on a node without GPUs, an index out of
// range, a repeated index, or a non-positive count.
std::vector<c10::Device> plan_replica_devices(const DeviceRequest& request, int local_rank, int device_count);

// plan_replica_devices with this node's CUDA device count.
std::vector<c10::Device> resolve_replica_devices(const DeviceRequest& request, int local_rank);

// Collective (every rank calls it): every rank drives the same number of replicas (the global batch
// layout depends on it), and GPU replicas on several ranks need a communicator whose tensors live on
// the GPU of the rank's first replica (Communicator::cuda_device()). Throws dml::Error otherwise.
void check_replica_devices(const std::vector<c10::Device>& devices, Communicator& comm);

// `requested` torch threads when > 0, else the cores of this node divided by the ranks on it (>= 1).
int resolve_thread_count(int requested, int local_size);

}  // namespace dml
