#include "dist/mpi_runtime.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

namespace {
bool process_exists(int pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// A watched peer whose process no longer exists has died (killed, crashed): name it and end the
// job now rather than wait for the timeout or for the launcher to notice.
void check_peers_alive(const PeerWatch& watch, const char* what, const CollectiveDeadline& deadline) {
  for (const LocalPeer& peer : watch.peers) {
    if (process_exists(peer.pid)) continue;
    log::error("dist", str("lost rank ", peer.rank, " (pid ", peer.pid, " on host ", watch.host,
                           "): its process ended while rank ", deadline.rank, " waited in ", what,
                           deadline.step >= 0 ? str(" at step ", deadline.step) : std::string(),
                           "; unless rank ", peer.rank, " printed an error of its own, it was killed (a signal, "
                           "the out-of-memory killer); aborting the job"));
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);
  }
}
}  // namespace

void mpi_wait(MPI_Request& request, const char* what, const CollectiveDeadline* deadline) {
  if (!deadline || deadline->seconds <= 0) {
    mpi_check(MPI_Wait(&request, MPI_STATUS_IGNORE), what);
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  const auto limit = std::chrono::duration<double>(deadline->seconds);
  const auto watch_every = std::chrono::milliseconds(100);
  auto next_watch = start + watch_every;
  for (int polls = 0;; ++polls) {
    int done = 0;
    mpi_check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
    if (done) return;
    const auto now = std::chrono::steady_clock::now();
    if (deadline->watch && now >= next_watch) {
      next_watch = now + watch_every;
      check_peers_alive(*deadline->watch, what, *deadline);
    }
    if (now - start > limit) {
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

namespace {
// Every rank's pid and host name (one all-gather); keeps this node's other ranks whose processes
// are visible from here (a separate pid namespace would make a live peer look dead otherwise).
PeerWatch gather_peer_watch(MPI_Comm world, int rank, int size) {
  constexpr int kHostChars = 256;
  struct Entry {
    int64_t pid;
    char host[kHostChars];
  };
  Entry mine{};
  mine.pid = ::getpid();
  ::gethostname(mine.host, kHostChars - 1);
  std::vector<Entry> all(static_cast<size_t>(size));
  DML_MPI_CHECK(MPI_Allgather(&mine, sizeof(Entry), MPI_BYTE, all.data(), sizeof(Entry), MPI_BYTE, world));
  PeerWatch watch;
  watch.host = mine.host;
  for (int r = 0; r < size; ++r) {
    const Entry& e = all[static_cast<size_t>(r)];
    if (r == rank || std::strncmp(e.host, mine.host, kHostChars) != 0) continue;
    if (!process_exists(static_cast<int>(e.pid))) continue;
    watch.peers.push_back({r, static_cast<int>(e.pid)});
  }
  return watch;
}
}  // namespace

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
  c.watch = gather_peer_watch(c.world, c.rank, c.size);
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
