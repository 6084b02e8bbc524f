#pragma once
// Which devices this rank's replicas run on, and what the launcher says about this process.
#include <torch/torch.h>

#include <vector>

#include "dml/cli/options.h"

namespace dml {

// --gpus "auto": the GPU of the local rank when CUDA is available, else the CPU; "" or "cpu": the CPU
// (--cpu-replicas replicas); "0,2": those GPUs, one replica each. Errors name --gpus and the fix.
std::vector<torch::Device> resolve_replica_devices(const RunOptions& run, int local_rank);

// Rank and local rank from the launcher's environment (Open MPI, PMIx, Slurm); 0 without a launcher.
// Used before MPI is initialised (device choice, logging of option errors).
int rank_from_environment();
int local_rank_from_environment();

// --threads, or the cores of this node divided by the ranks on it (at least 1).
int resolve_thread_count(const RunOptions& run, int local_size);

}  // namespace dml

namespace dml {
class Communicator;
// resolve_replica_devices for this rank, then checks across ranks: every rank has the same number
// of replicas (the global batch layout depends on it), and CUDA replicas across several ranks need
// the NCCL backend. Collective: every rank calls it.
std::vector<torch::Device> resolve_replica_devices_checked(const RunOptions& run, Communicator& comm);
}  // namespace dml
