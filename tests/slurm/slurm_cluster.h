#pragma once
// A one-node Slurm cluster of its own for a test: munged, slurmctld and slurmd (Debian's 22.05, as
// root) under a folder, started and stopped by tests/slurm/slurm_cluster.sh (which also runs by
// hand). Every command given to run() gets SLURM_CONF of this cluster; nothing global is changed.
// The destructor cancels the jobs, then stops the daemons (bounded waits); a watchdog in the script
// stops the cluster if the test process dies first.
#include <string>

#include "test_support.h"

namespace dml::test {

struct JobInfo {
  std::string state;      // JobState, e.g. PENDING, RUNNING, COMPLETED, FAILED; "" when unknown
  int restarts = -1;      // Restarts (requeues so far)
  std::string exit_code;  // ExitCode, e.g. "0:0"
  std::string text;       // all of `scontrol show job`
};

class SlurmCluster {
 public:
  explicit SlurmCluster(const std::string& dir);  // throws std::runtime_error with the script's output
  ~SlurmCluster();
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  const std::string& conf() const { return conf_; }
  // Runs a /bin/sh command with this cluster's SLURM_CONF exported.
  CommandResult run(const std::string& command) const;
  // `<env> sbatch --parsable <args>` (env: shell assignments "A=1 B=2 ", passed on to the job since
  // sbatch exports the environment); returns the job id, or "" (the output is in *output).
  std::string submit(const std::string& env, const std::string& args, std::string* output = nullptr) const;
  JobInfo job(const std::string& id) const;
  // Polls job(id) every 0.2 s until it is in a final state (COMPLETED, FAILED, CANCELLED, TIMEOUT,
  // NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, DEADLINE, PREEMPTED) with `restarts` >= min_restarts, or
  // until timeout_s; returns the last JobInfo seen.
  JobInfo wait_done(const std::string& id, int timeout_s, int min_restarts = 0) const;
  // The daemons' logs (for failure messages).
  std::string logs() const;

 private:
  std::string dir_, conf_;
};

}  // namespace dml::test
