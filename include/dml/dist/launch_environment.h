#pragma once
// What the launcher (mpirun, srun, a PMIx launcher) tells this process through its environment, read
// in one place. It is known before MPI starts, so it decides the device of a rank and the tag of an
// early error; after start-up the Communicator's rank() and local_rank() are authoritative (and agree).
#include <functional>

namespace dml {

struct LaunchEnvironment {
  bool launched = false;  // started by a launcher as one task of a multi-process job
  int rank = 0;           // this process's rank in the job (0 without a launcher)
  int local_rank = 0;     // its rank among the job's processes on this node (0 without a launcher)
};

using EnvLookup = std::function<const char*(const char* name)>;

// Reads, first set and non-empty wins:
//   rank:       OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK, SLURM_PROCID
//   local rank: OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID
//   launched:   OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK set, or SLURM_NTASKS > 1 with SLURM_PROCID set
//               (an allocation alone, salloc or sbatch without srun, sets SLURM_NTASKS but starts no task).
// `env` defaults to std::getenv (tests pass a fake environment).
LaunchEnvironment read_launch_environment(const EnvLookup& env = {});

}  // namespace dml
