#include "dist/mpi_runtime.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml::dist {

void mpi_check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(str("dist/mpi: ", what, " failed: ", std::string(text, length)));
}

namespace {
void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}
}  // namespace

void ensure_mpi_initialized() {
  int initialized = 0;
  DML_MPI_CHECK(MPI_Initialized(&initialized));
  int provided = 0;
  if (initialized) {
    DML_MPI_CHECK(MPI_Query_thread(&provided));
  } else {
    DML_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided));
    std::atexit(finalize_at_exit);
  }
  // Collectives may run on autograd's backward threads, so every call must be thread-safe.
  if (provided < MPI_THREAD_MULTIPLE) {
    log::warn("dist", "MPI provides thread level " + std::to_string(provided) +
                          ", below MPI_THREAD_MULTIPLE; collectives must then be issued from one thread");
  }
}

MPI_Datatype mpi_datatype(const at::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    case at::kByte: return MPI_UINT8_T;
    default:
      throw Error(str("dist/mpi: dtype ", tensor.scalar_type(),
                      " has no MPI mapping; use float32, float64, int64, int32 or uint8"));
  }
}

void mpi_wait(MPI_Request& request, const char* what, const CollectiveDeadline* deadline) {
  if (!deadline || deadline->seconds <= 0) {
    mpi_check(MPI_Wait(&request, MPI_STATUS_IGNORE), what);
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  const auto limit = std::chrono::duration<double>(deadline->seconds);
  for (int polls = 0;; ++polls) {
    int done = 0;
    mpi_check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
    if (done) return;
    if (std::chrono::steady_clock::now() - start > limit) {
      log::error("dist", str("collective timeout: rank ", deadline->rank, " waited more than ", deadline->seconds,
                             " s (--collective-timeout) in ", what,
                             deadline->step >= 0 ? str(" at step ", deadline->step) : std::string(),
                             "; another rank is stuck, slow or lost; aborting the job"));
      std::fflush(stdout);
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
      std::_Exit(1);
    }
    // Spin briefly (collectives are usually short), then poll gently.
    if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void agree_on_tensor(MPI_Comm comm, CollectiveOp op, const at::Tensor& tensor, const AgreementRules& rules,
                     int root, const CollectiveDeadline* deadline) {
  exchange_and_check(comm, op, describe_tensor(tensor, rules, root, op), rules, deadline);
}

void agree_on_barrier(MPI_Comm comm, const AgreementRules& rules, const CollectiveDeadline* deadline) {
  exchange_and_check(comm, CollectiveOp::kBarrier, describe_barrier(), rules, deadline);
}

void exchange_and_check(MPI_Comm comm, CollectiveOp op, const TensorSignature& mine, const AgreementRules& rules,
                        const CollectiveDeadline* deadline) {
  int size = 1;
  DML_MPI_CHECK(MPI_Comm_size(comm, &size));
  std::vector<TensorSignature> table(size);
  if (!deadline) {
    DML_MPI_CHECK(MPI_Allgather(mine.data(), kSignatureWords, MPI_INT64_T, table.data(), kSignatureWords,
                                MPI_INT64_T, comm));
  } else {
    MPI_Request request = MPI_REQUEST_NULL;
    DML_MPI_CHECK(MPI_Iallgather(mine.data(), kSignatureWords, MPI_INT64_T, table.data(), kSignatureWords,
                                 MPI_INT64_T, comm, &request));
    mpi_wait(request, str("the agreement exchange before ", op_name(op)).c_str(), deadline);
  }
  check_agreement(op, table, rules);
}

MpiComms make_mpi_comms() {
  ensure_mpi_initialized();
  MpiComms c;
  DML_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &c.world));
  DML_MPI_CHECK(MPI_Comm_set_errhandler(c.world, MPI_ERRORS_RETURN));
  DML_MPI_CHECK(MPI_Comm_rank(c.world, &c.rank));
  DML_MPI_CHECK(MPI_Comm_size(c.world, &c.size));
  DML_MPI_CHECK(MPI_Comm_split_type(c.world, MPI_COMM_TYPE_SHARED, c.rank, MPI_INFO_NULL, &c.local));
  DML_MPI_CHECK(MPI_Comm_rank(c.local, &c.local_rank));
  DML_MPI_CHECK(MPI_Comm_size(c.local, &c.local_size));
  return c;
}

void free_mpi_comms(MpiComms& comms) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) {
    if (comms.local != MPI_COMM_NULL) MPI_Comm_free(&comms.local);
    if (comms.world != MPI_COMM_NULL) MPI_Comm_free(&comms.world);
  }
  comms.local = comms.world = MPI_COMM_NULL;
}

}  // namespace dml::dist
