#include "dml/train/devices.h"

#include <cstdlib>
#include <sstream>
#include <thread>

#include "dml/util/error.h"

namespace dml {
namespace {
int env_int(std::initializer_list<const char*> names, int fallback) {
  for (const char* name : names) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return std::atoi(value);
  }
  return fallback;
}
}  // namespace

int rank_from_environment() { return env_int({"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}, 0); }

int local_rank_from_environment() {
  return env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}, 0);
}

std::vector<torch::Device> resolve_replica_devices(const RunOptions& run, int local_rank) {
  const bool cuda = torch::cuda::is_available();
  std::vector<torch::Device> devices;
  if (run.gpus == "auto") {
    if (cuda) return {torch::Device(torch::kCUDA, static_cast<int>(local_rank % torch::cuda::device_count()))};
  } else if (!run.gpus.empty() && run.gpus != "cpu") {
    check(cuda, "--gpus ", run.gpus, ": CUDA is not available (this build or machine has no GPU); use --gpus '' for the CPU");
    std::stringstream in(run.gpus);
    std::string item;
    while (std::getline(in, item, ',')) {
      int index = -1;
      try {
        index = std::stoi(item);
      } catch (const std::exception&) {
        throw Error(str("--gpus ", run.gpus, ": '", item, "' is not a GPU index; use e.g. --gpus 0,1"));
      }
      check(index >= 0 && index < static_cast<int>(torch::cuda::device_count()), "--gpus ", run.gpus, ": GPU ", index,
            " does not exist (this node has ", torch::cuda::device_count(), ")");
      devices.emplace_back(torch::kCUDA, index);
    }
    check(!devices.empty(), "--gpus ", run.gpus, ": no GPU index given");
    return devices;
  }
  for (int64_t j = 0; j < run.cpu_replicas; ++j) devices.emplace_back(torch::kCPU);
  return devices;
}

int resolve_thread_count(const RunOptions& run, int local_size) {
  if (run.threads > 0) return run.threads;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, local_size));
}

}  // namespace dml

#include "dml/dist/communicator.h"

namespace dml {

std::vector<torch::Device> resolve_replica_devices_checked(const RunOptions& run, Communicator& comm) {
  std::vector<torch::Device> devices = resolve_replica_devices(run, comm.local_rank());
  const bool cuda = devices.front().is_cuda();
  check(!(cuda && comm.world_size() > 1 && comm.backend_name() != "nccl"), "--gpus ", run.gpus,
        ": GPU replicas on several ranks need the NCCL backend, but this run uses '", comm.backend_name(),
        "'; build dml with a CUDA LibTorch and NCCL (cluster/BUILD_CUDA.md) or use --gpus '' for CPU ranks");
  check(!(cuda && comm.backend_name() == "nccl" && devices.front().index() != comm.cuda_device()), "--gpus ", run.gpus,
        ": rank ", comm.rank(), " (local rank ", comm.local_rank(), ") is bound to cuda:", comm.cuda_device(),
        " for NCCL but its first replica is on ", devices.front().str(),
        "; list that GPU first, or omit --gpus for one GPU per rank");
  torch::Tensor count = torch::tensor({static_cast<int64_t>(devices.size())});
  if (cuda && comm.backend_name() == "nccl") count = count.to(devices.front());
  torch::Tensor all = comm.all_gather(count).to(torch::kCPU);
  check(all.min().item<int64_t>() == all.max().item<int64_t>(), "ranks drive different numbers of replicas (",
        all.min().item<int64_t>(), " to ", all.max().item<int64_t>(), "); give every rank the same --gpus count");
  return devices;
}

}  // namespace dml
