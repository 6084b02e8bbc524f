#pragma once
// Private: MPI start-up and error checking shared by the mpi and nccl backends.
#include <mpi.h>

#include <string>
#include <vector>

#include "dist/tensor_agreement.h"

namespace at {
class Tensor;
}

namespace dml::dist {

// Throws dml::Error "<what>: <MPI error string>" when code != MPI_SUCCESS.
void mpi_check(int code, const char* what);
#define DML_MPI_CHECK(call) ::dml::dist::mpi_check((call), #call)

// Initialises MPI with MPI_THREAD_MULTIPLE unless it is already initialised (then warns if the
// provided level is lower), and registers MPI_Finalize at exit only when it initialised MPI.
void ensure_mpi_initialized();

// MPI datatype of a float32/float64/int64/int32/uint8 tensor; dml::Error otherwise.
MPI_Datatype mpi_datatype(const at::Tensor& tensor);

// All-gathers every rank's signature of `tensor` over `comm` and runs check_agreement on the table
// (the same on every rank, so a mismatch throws on every rank).
// Hang protection: how long a rank waits for one non-blocking MPI call before it logs this rank,
// the step and the operation and aborts the job (MPI_Abort). seconds <= 0: no limit.
// The ranks on this rank's node whose processes this rank can see (same host name, pid visible at
// start-up): while it waits, a rank checks that they still exist, so that a rank killed mid-step is
// named by dml (rank, pid, host) within a fraction of a second. A rank on another node cannot be
// watched this way; the launcher (mpirun, srun) reports it.
struct LocalPeer {
  int rank = 0;
  int pid = 0;
};
struct PeerWatch {
  std::string host;              // this node's host name
  std::vector<LocalPeer> peers;  // this node's other ranks
};
struct CollectiveDeadline {
  double seconds = 0;
  int64_t step = -1;
  int rank = 0;
  const PeerWatch* watch = nullptr;  // nullptr or no peers: nothing is watched
};
// Completes `request` (MPI_Wait without a limit; otherwise MPI_Test polled until the deadline, and
// while polling, the deadline's watched peers checked every 100 ms: a peer whose process is gone
// ends the job (MPI_Abort) with one line naming it). `what` names the operation in the messages.
void mpi_wait(MPI_Request& request, const char* what, const CollectiveDeadline* deadline);

// deadline: nullptr = a blocking exchange; otherwise a non-blocking one bounded by it.
void agree_on_tensor(MPI_Comm comm, CollectiveOp op, const at::Tensor& tensor, const AgreementRules& rules,
                     int root = 0, const CollectiveDeadline* deadline = nullptr);
// The same for a barrier (its signature names only the operation).
void agree_on_barrier(MPI_Comm comm, const AgreementRules& rules, const CollectiveDeadline* deadline = nullptr);
// All-gathers `mine` over `comm` and runs check_agreement(op, table, rules).
void exchange_and_check(MPI_Comm comm, CollectiveOp op, const TensorSignature& mine, const AgreementRules& rules,
                        const CollectiveDeadline* deadline = nullptr);

// Communicators every backend built on MPI needs: a private duplicate of the world (errors
// return instead of aborting) and its shared-memory (node-local) split.
struct MpiComms {
  MPI_Comm world = MPI_COMM_NULL;
  MPI_Comm local = MPI_COMM_NULL;
  int rank = 0, size = 1, local_rank = 0, local_size = 1;
  PeerWatch watch;  // gathered once at start-up (one all-gather of pids and host names)
};
MpiComms make_mpi_comms();
void free_mpi_comms(MpiComms& comms);  // safe after MPI_Finalize (then a no-op)

}  // namespace dml::dist
