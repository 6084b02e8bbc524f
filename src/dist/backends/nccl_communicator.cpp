// The NCCL backend: CUDA tensors, one NCCL communicator per rank on its device, MPI for bootstrap
// (the unique id is broadcast over MPI) and for the host-side shape agreement before collectives
// (at start-up, and always with DML_CHECK_COLLECTIVES=1: see agree_each_collective).
//
// Streams: each collective runs on this communicator's own high-priority stream. Ordering with
// LibTorch's current stream is by events: record on current, wait on the NCCL stream (inputs are
// ready), launch, record on the NCCL stream, wait on current (results are ready for whatever the
// caller enqueues next). No host synchronisation. Tensors touched on the NCCL stream are
// registered with the caching allocator (recordStream) so their memory is not reused early.
// Compiled only when CMake finds a CUDA LibTorch and NCCL (DML_HAVE_NCCL).
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "dist/backend_factories.h"
#include "dist/mpi_runtime.h"
#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml::dist {
namespace {

void nccl_check(ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return;
  throw Error(str("dist/nccl: ", what, " failed: ", ncclGetErrorString(result),
                  " (set NCCL_DEBUG=INFO for details; check that every rank has its own GPU)"));
}
#define DML_NCCL_CHECK(call) nccl_check((call), #call)

ncclDataType_t nccl_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kLong: return ncclInt64;
    case at::kInt: return ncclInt32;
    case at::kByte: return ncclUint8;
    case at::kHalf: return ncclFloat16;
#if defined(NCCL_VERSION_CODE) && NCCL_VERSION_CODE >= 21000
    case at::kBFloat16: return ncclBfloat16;
#endif
    default:
      throw Error(str("dist/nccl: dtype ", t.scalar_type(), " has no NCCL mapping; use float32, float64, int64, ",
                      "int32, uint8 or float16"));
  }
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(int cuda_device) : mpi_(make_mpi_comms()) {
    const int devices = static_cast<int>(c10::cuda::device_count());
    check(devices > 0, "dist/nccl: rank ", mpi_.rank, " sees no CUDA device; use the mpi backend on CPU ranks");
    if (mpi_.local_size > devices) {
      log::warn("dist", str(mpi_.local_size, " ranks on this node share ", devices,
                            " GPUs; NCCL needs one GPU per rank: start at most ", devices, " ranks per node"));
    }
    check(cuda_device < devices, "dist/nccl: rank ", mpi_.rank, " was asked to bind cuda:", cuda_device, " but sees only ",
          devices, " GPUs");
    device_ = static_cast<c10::DeviceIndex>(cuda_device >= 0 ? cuda_device : mpi_.local_rank % devices);
    c10::cuda::set_device(device_);
    c10::cuda::CUDAGuard guard(device_);
    // Rank 0 makes the unique id; its status travels with it so that a failure there fails every
    // rank instead of leaving the others waiting in the broadcast.
    struct {
      ncclResult_t status = ncclSuccess;
      ncclUniqueId id;
    } bootstrap;
    if (mpi_.rank == 0) bootstrap.status = ncclGetUniqueId(&bootstrap.id);
    DML_MPI_CHECK(MPI_Bcast(&bootstrap, sizeof(bootstrap), MPI_BYTE, 0, mpi_.world));
    check(bootstrap.status == ncclSuccess, "dist/nccl: ncclGetUniqueId failed on rank 0: ",
          ncclGetErrorString(bootstrap.status));
    DML_NCCL_CHECK(ncclCommInitRank(&comm_, mpi_.size, bootstrap.id, mpi_.rank));
    stream_.emplace(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device_));
    rules_ = AgreementRules{"nccl", static_cast<int>(device_), /*allow_half=*/true};
  }

  ~NcclCommunicator() override {
    if (comm_ != nullptr) {
      // Let queued collectives finish before the communicator goes (older NCCL does not wait).
      cudaStreamSynchronize(stream_->stream());
      ncclCommDestroy(comm_);
    }
    free_mpi_comms(mpi_);
  }

  std::string backend_name() const override { return "nccl"; }
  int rank() const override { return mpi_.rank; }
  int world_size() const override { return mpi_.size; }
  int local_rank() const override { return mpi_.local_rank; }
  int local_size() const override { return mpi_.local_size; }
  int cuda_device() const override { return device_; }

  void all_reduce_sum(at::Tensor& tensor) override {
    const CollectiveDeadline d = deadline();
    if (agree_each_collective()) agree_on_tensor(mpi_.world, CollectiveOp::kAllReduce, tensor, rules_, 0, &d);
    at::Tensor work = tensor.contiguous();
    launch({work}, [&](cudaStream_t s) {
      DML_NCCL_CHECK(ncclAllReduce(work.data_ptr(), work.data_ptr(), work.numel(), nccl_type(work), ncclSum, comm_, s));
    });
    if (!work.is_same(tensor)) tensor.copy_(work);
  }

  // Enqueued on the NCCL stream like all_reduce_sum (the current stream waits for it by an event),
  // without the host-side agreement, so it costs the host no round trip: already "started".
  std::unique_ptr<PendingCollective> start_all_reduce_sum(at::Tensor& tensor) override {
    check(tensor.is_contiguous() && tensor.is_cuda(), "dist/nccl start_all_reduce_sum: the tensor must be a "
          "contiguous CUDA tensor, got ", tensor.sizes(), " on ", tensor.device());
    launch({tensor}, [&](cudaStream_t s) {
      DML_NCCL_CHECK(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), nccl_type(tensor), ncclSum,
                                   comm_, s));
    });
    return completed_collective();
  }

  at::Tensor all_gather(const at::Tensor& tensor) override {
    const CollectiveDeadline d = deadline();
    if (agree_each_collective()) agree_on_tensor(mpi_.world, CollectiveOp::kAllGather, tensor, rules_, 0, &d);
    const at::Tensor input = tensor.contiguous();
    std::vector<int64_t> shape = input.sizes().vec();
    if (shape.empty()) shape.push_back(1);
    shape[0] *= mpi_.size;
    at::Tensor output = at::empty(shape, input.options());
    launch({input, output}, [&](cudaStream_t s) {
      DML_NCCL_CHECK(ncclAllGather(input.data_ptr(), output.data_ptr(), input.numel(), nccl_type(input), comm_, s));
    });
    return output;
  }

  at::Tensor reduce_scatter_sum(const at::Tensor& tensor) override {
    const CollectiveDeadline d = deadline();
    if (agree_each_collective()) agree_on_tensor(mpi_.world, CollectiveOp::kReduceScatter, tensor, rules_, 0, &d);
    const at::Tensor input = tensor.contiguous();
    std::vector<int64_t> shape = input.sizes().vec();
    shape[0] /= mpi_.size;
    at::Tensor output = at::empty(shape, input.options());
    launch({input, output}, [&](cudaStream_t s) {
      DML_NCCL_CHECK(ncclReduceScatter(input.data_ptr(), output.data_ptr(), output.numel(), nccl_type(input), ncclSum,
                                       comm_, s));
    });
    return output;
  }

  void broadcast(at::Tensor& tensor, int root) override {
    const CollectiveDeadline d = deadline();
    if (agree_each_collective()) agree_on_tensor(mpi_.world, CollectiveOp::kBroadcast, tensor, rules_, root, &d);
    at::Tensor work = tensor.contiguous();
    launch({work}, [&](cudaStream_t s) {
      DML_NCCL_CHECK(ncclBroadcast(work.data_ptr(), work.data_ptr(), work.numel(), nccl_type(work), root, comm_, s));
    });
    if (!work.is_same(tensor)) tensor.copy_(work);
  }

  void barrier() override {
    // Host-level barrier after this rank's queued collectives have completed.
    const CollectiveDeadline d = deadline();
    wait_for_stream(d);
    agree_on_barrier(mpi_.world, rules_, &d);
    MPI_Request request = MPI_REQUEST_NULL;
    DML_MPI_CHECK(MPI_Ibarrier(mpi_.world, &request));
    mpi_wait(request, "barrier", &d);
  }

  // Hang protection: the host-side agreement before every collective and the barrier are bounded
  // like the mpi backend's (a rank stuck outside a collective, or lost, ends the job with its
  // rank, step and operation), and so is the wait for this rank's queued NCCL work at a barrier.
  // A collective that hangs inside an NCCL kernel is caught at the next barrier (every evaluation
  // and checkpoint); a host read of a result in between waits for it.
  void set_collective_timeout(double seconds) override { timeout_s_ = seconds; }
  void set_step(int64_t step) override { step_ = step; }

  // The host-side agreement of shapes and operations before a collective costs an MPI round trip.
  // It runs for every collective of the start-up (model and layout checks, broadcasts: where a
  // mismatch between ranks is likely) and, once training steps begin (set_step), only with
  // DML_CHECK_COLLECTIVES=1, for debugging a hang or a mismatch. Barriers always agree.
  bool agree_each_collective() const { return step_.load() < 0 || check_every_collective_; }

  [[noreturn]] void abort(int exit_code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    if (comm_ != nullptr) ncclCommAbort(comm_);  // unblocks kernels waiting on dead peers
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);
  }

 private:
  // Runs `enqueue(nccl stream)` ordered after the current stream's work, and makes the current
  // stream wait for it. One NCCL call per launch, so no ncclGroupStart/End is needed.
  template <typename Enqueue>
  void launch(std::initializer_list<at::Tensor> tensors, Enqueue&& enqueue) {
    c10::cuda::CUDAGuard guard(device_);
    const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(device_);
    at::cuda::CUDAEvent inputs_ready;
    inputs_ready.record(current);
    inputs_ready.block(*stream_);
    enqueue(stream_->stream());
    for (const at::Tensor& t : tensors) {
      c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), *stream_);
    }
    at::cuda::CUDAEvent results_ready;
    results_ready.record(*stream_);
    results_ready.block(current);
  }

  CollectiveDeadline deadline() const { return {timeout_s_.load(), step_.load(), mpi_.rank, &mpi_.watch}; }

  // Waits for this rank's queued NCCL work, polling against the deadline (no limit when it is 0).
  void wait_for_stream(const CollectiveDeadline& d) {
    c10::cuda::CUDAGuard guard(device_);
    if (d.seconds <= 0) {
      stream_->synchronize();
      return;
    }
    const auto start = std::chrono::steady_clock::now();
    while (!stream_->query()) {
      if (std::chrono::steady_clock::now() - start > std::chrono::duration<double>(d.seconds)) {
        log::error("dist", str("collective timeout: rank ", d.rank, " waited more than ", d.seconds,
                               " s (--collective-timeout) for its NCCL collectives to complete",
                               d.step >= 0 ? str(" at step ", d.step) : std::string(),
                               "; another rank is stuck, slow or lost; aborting the job"));
        abort(1);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  MpiComms mpi_;
  std::atomic<double> timeout_s_{0};
  std::atomic<int64_t> step_{-1};
  const bool check_every_collective_ = [] {
    const char* value = std::getenv("DML_CHECK_COLLECTIVES");
    return value != nullptr && std::string(value) == "1";
  }();
  ncclComm_t comm_ = nullptr;
  c10::DeviceIndex device_ = 0;
  std::optional<c10::cuda::CUDAStream> stream_;  // set once the device is chosen
  AgreementRules rules_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(int cuda_device) {
  return std::make_unique<NcclCommunicator>(cuda_device);
}

}  // namespace dml::dist
