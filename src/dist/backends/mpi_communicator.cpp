// The MPI backend: host tensors, MPI collectives on a private duplicate of MPI_COMM_WORLD, issued
// non-blocking and completed by mpi_wait (bounded by set_collective_timeout when it is > 0). Every collective is preceded by a signature all-gather (mpi_runtime.h) so that a
// shape or dtype mismatch throws on every rank instead of hanging or corrupting memory.
#include <atomic>
#include <climits>

#include "dist/backend_factories.h"
#include "dist/mpi_runtime.h"
#include "dml/util/error.h"

namespace dml::dist {
namespace {

// MPI counts are int: larger element counts go in chunks (all-reduce, broadcast) or are refused.
constexpr int64_t kMaxCount = INT_MAX;

int checked_count(int64_t count, const char* op) {
  check(count <= kMaxCount, "dist/mpi ", op, ": ", count, " elements exceed MPI's int count limit (", kMaxCount,
        "); split the tensor");
  return static_cast<int>(count);
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() : comms_(make_mpi_comms()) {}
  ~MpiCommunicator() override { free_mpi_comms(comms_); }

  std::string backend_name() const override { return "mpi"; }
  int rank() const override { return comms_.rank; }
  int world_size() const override { return comms_.size; }
  int local_rank() const override { return comms_.local_rank; }
  int local_size() const override { return comms_.local_size; }
  int cuda_device() const override { return -1; }

  void all_reduce_sum(at::Tensor& tensor) override {
    const CollectiveDeadline d = deadline();
    agree_on_tensor(comms_.world, CollectiveOp::kAllReduce, tensor, rules_, 0, &d);
    at::Tensor work = tensor.contiguous();
    const MPI_Datatype type = mpi_datatype(work);
    char* data = static_cast<char*>(work.data_ptr());
    const int64_t item = work.element_size();
    for (int64_t offset = 0; offset < work.numel(); offset += kMaxCount) {
      const int count = static_cast<int>(std::min<int64_t>(kMaxCount, work.numel() - offset));
      MPI_Request request = MPI_REQUEST_NULL;
      DML_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data + offset * item, count, type, MPI_SUM, comms_.world, &request));
      mpi_wait(request, "all_reduce_sum", &d);
    }
    if (!work.is_same(tensor)) tensor.copy_(work);
  }

  std::unique_ptr<PendingCollective> start_all_reduce_sum(at::Tensor& tensor) override {
    check(tensor.is_contiguous() && tensor.device().is_cpu(), "dist/mpi start_all_reduce_sum: the tensor must be a "
          "contiguous host tensor, got ", tensor.sizes(), " on ", tensor.device());
    if (tensor.numel() > kMaxCount) return Communicator::start_all_reduce_sum(tensor);
    auto pending = std::make_unique<Pending>(deadline());
    DML_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, tensor.data_ptr(), static_cast<int>(tensor.numel()),
                                 mpi_datatype(tensor), MPI_SUM, comms_.world, &pending->request));
    return pending;
  }

  at::Tensor all_gather(const at::Tensor& tensor) override {
    const CollectiveDeadline d = deadline();
    agree_on_tensor(comms_.world, CollectiveOp::kAllGather, tensor, rules_, 0, &d);
    const at::Tensor input = tensor.contiguous();
    std::vector<int64_t> shape = input.sizes().vec();
    if (shape.empty()) shape.push_back(1);  // a scalar gathers into [world]
    shape[0] *= comms_.size;
    at::Tensor output = at::empty(shape, input.options());
    checked_count(output.numel(), "all_gather");
    const int count = checked_count(input.numel(), "all_gather");
    const MPI_Datatype type = mpi_datatype(input);
    MPI_Request request = MPI_REQUEST_NULL;
    DML_MPI_CHECK(
        MPI_Iallgather(input.data_ptr(), count, type, output.data_ptr(), count, type, comms_.world, &request));
    mpi_wait(request, "all_gather", &d);
    return output;
  }

  at::Tensor reduce_scatter_sum(const at::Tensor& tensor) override {
    const CollectiveDeadline d = deadline();
    agree_on_tensor(comms_.world, CollectiveOp::kReduceScatter, tensor, rules_, 0, &d);
    const at::Tensor input = tensor.contiguous();
    std::vector<int64_t> shape = input.sizes().vec();
    shape[0] /= comms_.size;
    at::Tensor output = at::empty(shape, input.options());
    checked_count(input.numel(), "reduce_scatter_sum");
    const int count = checked_count(output.numel(), "reduce_scatter_sum");
    MPI_Request request = MPI_REQUEST_NULL;
    DML_MPI_CHECK(MPI_Ireduce_scatter_block(input.data_ptr(), output.data_ptr(), count, mpi_datatype(input), MPI_SUM,
                                            comms_.world, &request));
    mpi_wait(request, "reduce_scatter_sum", &d);
    return output;
  }

  void broadcast(at::Tensor& tensor, int root) override {
    const CollectiveDeadline d = deadline();
    agree_on_tensor(comms_.world, CollectiveOp::kBroadcast, tensor, rules_, root, &d);
    at::Tensor work = tensor.contiguous();
    const MPI_Datatype type = mpi_datatype(work);
    char* data = static_cast<char*>(work.data_ptr());
    const int64_t item = work.element_size();
    for (int64_t offset = 0; offset < work.numel(); offset += kMaxCount) {
      const int count = static_cast<int>(std::min<int64_t>(kMaxCount, work.numel() - offset));
      MPI_Request request = MPI_REQUEST_NULL;
      DML_MPI_CHECK(MPI_Ibcast(data + offset * item, count, type, root, comms_.world, &request));
      mpi_wait(request, "broadcast", &d);
    }
    if (!work.is_same(tensor)) tensor.copy_(work);
  }

  void barrier() override {
    const CollectiveDeadline d = deadline();
    agree_on_barrier(comms_.world, rules_, &d);
    MPI_Request request = MPI_REQUEST_NULL;
    DML_MPI_CHECK(MPI_Ibarrier(comms_.world, &request));
    mpi_wait(request, "barrier", &d);
  }

  void set_collective_timeout(double seconds) override { timeout_s_ = seconds; }
  void set_step(int64_t step) override { step_ = step; }

  [[noreturn]] void abort(int exit_code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 private:
  struct Pending final : PendingCollective {
    explicit Pending(const CollectiveDeadline& d) : deadline(d) {}
    ~Pending() override {
      if (request == MPI_REQUEST_NULL) return;
      try {
        wait();  // never leave MPI writing into memory that may be freed
      } catch (...) {
      }
    }
    bool test() override {
      if (request == MPI_REQUEST_NULL) return true;
      int done = 0;
      mpi_check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "all_reduce_sum (started)");
      return done != 0;
    }
    void wait() override {
      if (request != MPI_REQUEST_NULL) mpi_wait(request, "all_reduce_sum (gradient bucket)", &deadline);
    }
    CollectiveDeadline deadline;
    MPI_Request request = MPI_REQUEST_NULL;
  };

  // Collectives may run on autograd's threads while the trainer sets the step.
  CollectiveDeadline deadline() const { return {timeout_s_.load(), step_.load(), comms_.rank, &comms_.watch}; }

  MpiComms comms_;
  AgreementRules rules_{"mpi", kHostDevice, /*allow_half=*/false};
  std::atomic<double> timeout_s_{0};
  std::atomic<int64_t> step_{-1};
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace dml::dist
