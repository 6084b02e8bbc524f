#pragma once
// Communicators: the one interface through which ranks exchange tensors. Every rank issues the
// same collectives in the same order; a mismatch throws on every rank and abort() ends the whole
// job, so no rank waits forever.
// Backends: "single" (one process, always built), "mpi" (Open MPI, host tensors, always built),
// "nccl" (CUDA tensors, built only with a CUDA LibTorch and NCCL; MPI bootstraps it). Only the
// factory below knows which backends exist; callers speak this interface and our own types.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace dml {

enum class Backend { kAuto, kSingle, kMpi, kNccl };

// A collective that was started and may still be running (Communicator::start_all_reduce_sum).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Lets the collective progress without blocking (MPI progresses only inside MPI calls); true once
  // it has completed.
  virtual bool test() = 0;
  // Returns once it has completed (bounded like every collective by set_collective_timeout).
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual std::string backend_name() const = 0;  // "single", "mpi", "nccl"
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Rank and size among the ranks of this node (MPI: the shared-memory split of the world).
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  // Where this backend's tensors must live: -1 = host (CPU) memory, k >= 0 = CUDA device k.
  // "single" accepts tensors on any device and reports -1.
  virtual int cuda_device() const = 0;

  // Tensors: on CPU for "mpi", on cuda_device() for "nccl", any device for "single"; dtype
  // float32, float64, int64, int32 or uint8 (nccl also float16, bfloat16). Contiguous tensors are
  // used in place; others are copied (in-place ops write the result back).
  // Collectives are lock-step: every rank calls the same ones in the same order with the same
  // shapes and dtypes. Every collective first agrees on shapes with a small exchange: a mismatch
  // (or a bad dtype/device on any rank) throws the same dml::Error on every rank instead of hanging.

  // Element-wise sum over ranks, in place; same shape on every rank.
  virtual void all_reduce_sum(at::Tensor& tensor) = 0;
  // [n, ...] on every rank (same n) -> [world*n, ...], rank-major: rows r*n..(r+1)*n-1 are rank r's.
  virtual at::Tensor all_gather(const at::Tensor& tensor) = 0;
  // [world*n, ...] on every rank -> [n, ...]: block `rank()` of the element-wise sum over ranks.
  // The first dimension must be divisible by world_size().
  virtual at::Tensor reduce_scatter_sum(const at::Tensor& tensor) = 0;
  // Copies root's tensor into every rank's tensor (same shape everywhere), in place.
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  // Returns once every rank has called it.
  virtual void barrier() = 0;
  // Starts an element-wise sum over ranks of `tensor` (contiguous; it must stay alive and untouched
  // until wait() returns) and returns at once where the backend can: "mpi" issues MPI_Iallreduce,
  // "nccl" enqueues on its stream. No shape agreement is exchanged: the caller guarantees that every
  // rank starts the same sequence of shapes (GradientBuckets checks its layout across ranks once, at
  // construction). Ranks must still start them in the same order. Default: all_reduce_sum, done.
  virtual std::unique_ptr<PendingCollective> start_all_reduce_sum(at::Tensor& tensor);

  // Ends every rank of the job with exit_code (MPI_Abort); never returns.
  [[noreturn]] virtual void abort(int exit_code) = 0;

  // Hang protection ("mpi"; the others ignore it): a collective (its agreement exchange included)
  // that has not completed on this rank after `seconds` logs one line naming this rank, the step
  // (set_step) and the operation, then ends the job (MPI_Abort). 0 = no limit (the default).
  virtual void set_collective_timeout(double seconds) {}
  // The training step the following collectives belong to, for that message; -1 = none.
  virtual void set_step(int64_t step) {}

 protected:
  // A handle whose collective has already completed (for backends that finish it on the spot).
  static std::unique_ptr<PendingCollective> completed_collective();
};

// The backend a run uses: `requested` unless it is kAuto; then "nccl" when the replicas are on a GPU
// (cuda_device >= 0) and NCCL is built, else "mpi" when started by a launcher
// (read_launch_environment().launched) or when MPI is already initialised, else "single".
Backend choose_backend(Backend requested, int cuda_device);

// Creates the communicator of this process with choose_backend(requested, cuda_device).
// cuda_device: the CUDA device of this rank's first replica, or -1 for CPU replicas. NCCL binds it
// (with -1, NCCL binds local_rank() % device_count). MPI is initialised with MPI_THREAD_MULTIPLE (or
// used as is when already initialised, e.g. by a test main) and finalised at exit only if this
// library initialised it. A backend that is not built -> dml::Error naming the built ones and how to
// build the missing one.
std::unique_ptr<Communicator> make_communicator(Backend requested, int cuda_device = -1);

// Names of the backends compiled into this build, e.g. {"single", "mpi"}.
std::vector<std::string> built_backends();

// "auto", "single", "mpi", "nccl" -> Backend; anything else -> dml::Error listing the choices.
Backend parse_backend(const std::string& name);
std::string backend_to_string(Backend backend);

}  // namespace dml
