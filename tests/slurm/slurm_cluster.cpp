#include "slurm_cluster.h"

#include <unistd.h>

#include <chrono>
#include <regex>
#include <stdexcept>
#include <thread>

namespace dml::test {
namespace {

std::string script() { return source_path("tests/slurm/slurm_cluster.sh"); }

std::string field(const std::string& text, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("(^|\\s)" + name + "=(\\S*)"))) return "";
  return m[2];
}

bool final_state(const std::string& s) {
  for (const char* f : {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                        "DEADLINE", "PREEMPTED"}) {
    if (s == f) return true;
  }
  return false;
}

}  // namespace

SlurmCluster::SlurmCluster(const std::string& dir) : dir_(dir), conf_(dir + "/slurm.conf") {
  const CommandResult r = run_command("timeout 90 bash " + shell_quote(script()) + " start " + shell_quote(dir_) + " " +
                                      std::to_string(getpid()));
  if (r.exit_code != 0 || r.output.find("SLURM_CONF=") == std::string::npos) {
    run_command("timeout 60 bash " + shell_quote(script()) + " stop " + shell_quote(dir_));
    throw std::runtime_error("slurm_cluster.sh start " + dir_ + " failed (exit " + std::to_string(r.exit_code) +
                             "):\n" + r.output);
  }
}

SlurmCluster::~SlurmCluster() { run_command("timeout 60 bash " + shell_quote(script()) + " stop " + shell_quote(dir_)); }

CommandResult SlurmCluster::run(const std::string& command) const {
  return run_command("export SLURM_CONF=" + shell_quote(conf_) + "; " + command);
}

std::string SlurmCluster::submit(const std::string& env, const std::string& args, std::string* output) const {
  const CommandResult r = run(env + "timeout 30 sbatch --parsable " + args);
  if (output != nullptr) *output = r.output;
  std::smatch m;
  if (r.exit_code != 0 || !std::regex_search(r.output, m, std::regex("^(\\d+)\\s*$"))) return "";
  return m[1];
}

JobInfo SlurmCluster::job(const std::string& id) const {
  JobInfo info;
  const CommandResult r = run("timeout 10 scontrol show job " + id);
  if (r.exit_code != 0) return info;
  info.text = r.output;
  info.state = field(r.output, "JobState");
  const std::string restarts = field(r.output, "Restarts");
  if (!restarts.empty()) info.restarts = std::stoi(restarts);
  info.exit_code = field(r.output, "ExitCode");
  return info;
}

JobInfo SlurmCluster::wait_done(const std::string& id, int timeout_s, int min_restarts) const {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  JobInfo info;
  while (std::chrono::steady_clock::now() < end) {
    info = job(id);
    if (final_state(info.state) && info.restarts >= min_restarts) return info;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return info;
}

std::string SlurmCluster::logs() const {
  return run_command("tail -n 30 " + shell_quote(dir_ + "/slurmctld.log") + " " + shell_quote(dir_ + "/slurmd.log"))
      .output;
}

}  // namespace dml::test
