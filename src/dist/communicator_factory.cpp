// The only place that knows which backends were compiled (CMake defines DML_HAVE_NCCL when it
// compiled backends/nccl_communicator.cpp). Everything else speaks the Communicator interface.
#include <mpi.h>

#include <algorithm>

#include "dist/backend_factories.h"
#include "dml/dist/launch_environment.h"
#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

bool mpi_already_initialized() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

}  // namespace

std::vector<std::string> built_backends() {
  std::vector<std::string> names = {"single", "mpi"};
#ifdef DML_HAVE_NCCL
  names.push_back("nccl");
#endif
  return names;
}

Backend parse_backend(const std::string& name) {
  if (name == "auto") return Backend::kAuto;
  if (name == "single") return Backend::kSingle;
  if (name == "mpi") return Backend::kMpi;
  if (name == "nccl") return Backend::kNccl;
  throw OptionError("backend", str("communicator backend '", name, "' is unknown; choose one of auto, single, mpi, "
                                   "nccl (built here: ", joined(built_backends()), ")"));
}

std::string backend_to_string(Backend backend) {
  switch (backend) {
    case Backend::kAuto: return "auto";
    case Backend::kSingle: return "single";
    case Backend::kMpi: return "mpi";
    case Backend::kNccl: return "nccl";
  }
  return "unknown";
}

namespace {
class CompletedCollective final : public PendingCollective {
 public:
  bool test() override { return true; }
  void wait() override {}
};
}  // namespace

std::unique_ptr<PendingCollective> Communicator::completed_collective() {
  return std::make_unique<CompletedCollective>();
}

std::unique_ptr<PendingCollective> Communicator::start_all_reduce_sum(at::Tensor& tensor) {
  all_reduce_sum(tensor);
  return completed_collective();
}

Backend choose_backend(Backend requested, int cuda_device) {
  if (requested != Backend::kAuto) return requested;
  // GPU replicas talk over NCCL when it is built; everything else over MPI when launched, or alone.
  const std::vector<std::string> built = built_backends();
  if (cuda_device >= 0 && std::find(built.begin(), built.end(), "nccl") != built.end()) return Backend::kNccl;
  return (read_launch_environment().launched || mpi_already_initialized()) ? Backend::kMpi : Backend::kSingle;
}

std::unique_ptr<Communicator> make_communicator(Backend requested, int cuda_device) {
  const Backend backend = choose_backend(requested, cuda_device);
  std::unique_ptr<Communicator> comm;
  switch (backend) {
    case Backend::kSingle: comm = dist::make_single_communicator(); break;
    case Backend::kMpi: comm = dist::make_mpi_communicator(); break;
    case Backend::kNccl:
#ifdef DML_HAVE_NCCL
      comm = dist::make_nccl_communicator(cuda_device);
      break;
#else
      throw Error(str("dist backend 'nccl' is not built in this binary (built: ", joined(built_backends()),
                      "); rebuild with a CUDA LibTorch and NCCL: cmake -DCMAKE_PREFIX_PATH=<libtorch-cuda>/share/cmake ",
                      "with nccl.h and libnccl under $NCCL_HOME or /usr/local/cuda (see cluster/BUILD_CUDA.md), ",
                      "or choose the mpi backend"));
#endif
    case Backend::kAuto: break;  // resolved by choose_backend
  }
  log::set_rank(comm->rank(), comm->world_size());
  return comm;
}

}  // namespace dml
