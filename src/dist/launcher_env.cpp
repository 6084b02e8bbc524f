#include "dist/launcher_env.h"

#include <cstdlib>
#include <string>

namespace dml::dist {

bool started_by_launcher(const EnvLookup& env) {
  auto get = [&](const char* name) -> const char* { return env ? env(name) : std::getenv(name); };
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    const char* value = get(name);
    if (value != nullptr && value[0] != '\0') return true;
  }
  // A Slurm allocation alone (salloc, sbatch without srun) sets SLURM_NTASKS but is not a launch;
  // srun sets SLURM_PROCID for each task it starts.
  const char* ntasks = get("SLURM_NTASKS");
  const char* procid = get("SLURM_PROCID");
  if (ntasks != nullptr && procid != nullptr && procid[0] != '\0') {
    char* end = nullptr;
    const long n = std::strtol(ntasks, &end, 10);
    if (end != ntasks && n > 1) return true;
  }
  return false;
}

}  // namespace dml::dist
