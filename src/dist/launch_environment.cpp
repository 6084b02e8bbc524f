#include "dml/dist/launch_environment.h"

#include <cstdlib>
#include <initializer_list>

namespace dml {

LaunchEnvironment read_launch_environment(const EnvLookup& env) {
  auto get = [&](const char* name) -> const char* {
    const char* value = env ? env(name) : std::getenv(name);
    return value != nullptr && value[0] != '\0' ? value : nullptr;
  };
  auto first_int = [&](std::initializer_list<const char*> names) {
    for (const char* name : names) {
      if (const char* value = get(name)) return std::atoi(value);
    }
    return 0;
  };
  LaunchEnvironment e;
  e.rank = first_int({"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"});
  e.local_rank = first_int({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"});
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (get(name) != nullptr) e.launched = true;
  }
  const char* ntasks = get("SLURM_NTASKS");
  if (ntasks != nullptr && get("SLURM_PROCID") != nullptr && std::atoi(ntasks) > 1) e.launched = true;
  return e;
}

}  // namespace dml
