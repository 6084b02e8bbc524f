#pragma once
// Private: whether this process was started by an MPI launcher (mpirun, srun, PMIx), judged from
// the environment only. Used by make_communicator(Backend::kAuto).
#include <functional>

namespace dml::dist {

using EnvLookup = std::function<const char*(const char* name)>;

// True when any of OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK is set, or SLURM_NTASKS > 1 and
// SLURM_PROCID is set. `env` defaults to std::getenv (tests pass a fake environment).
bool started_by_launcher(const EnvLookup& env = {});

}  // namespace dml::dist
