// dist_train: the distributed trainer. Single process (`dist_train ...`), under `mpirun -np N`, or
// under Slurm `srun`. One catch here logs the error and ends every rank.
#include <torch/torch.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "dml/cli/options.h"
#include "dml/cli/train_config.h"
#include "dml/dist/communicator.h"
#include "dml/dist/launch_environment.h"
#include "dml/eval/retrieval_metrics.h"
#include "dml/train/devices.h"
#include "dml/train/stop_signal.h"
#include "dml/train/trainer.h"
#include "dml/util/error.h"
#include "dml/util/host_allocator.h"
#include "dml/util/log.h"

namespace {

void print_summary(const dml::TrainSummary& summary) {
  std::vector<std::pair<std::string, dml::RetrievalMetrics>> columns;
  if (summary.has_untrained) columns.emplace_back("untrained", summary.untrained);
  if (summary.has_best) columns.emplace_back("best (epoch " + std::to_string(summary.best_epoch) + ")", summary.best);
  if (summary.has_last) columns.emplace_back("last", summary.last);
  std::printf("\nSteps run: %lld, %.1f images/s%s\n", static_cast<long long>(summary.steps_run), summary.images_per_sec,
              summary.stopped_by_signal ? " (stopped by signal; resume with --resume <prefix>-last.pt)" : "");
  if (!summary.phase_seconds.empty() && summary.steps_run > 0) {
    double total = 0;
    for (const auto& phase : summary.phase_seconds) total += phase.second;
    std::printf("\nStep phases (--time-phases, rank 0, ms per step):\n");
    for (const auto& [name, seconds] : summary.phase_seconds) {
      std::printf("  %-14s %8.2f  %5.1f%%\n", name.c_str(), 1e3 * seconds / static_cast<double>(summary.steps_run),
                  100.0 * seconds / std::max(total, 1e-12));
    }
    std::printf("  %-14s %8.2f\n", "total", 1e3 * total / static_cast<double>(summary.steps_run));
  }
  if (!columns.empty()) std::printf("\n%s\n", dml::format_metrics_table(columns).c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  dml::keep_host_memory();  // see host_allocator.h: ~10% of a CPU step
  // A file-size limit (ulimit -f) hit while writing a checkpoint is then a failed write (EFBIG),
  // reported like a full disk, instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  // The launcher's environment, read once: it tags early errors with the rank (world size unknown
  // before MPI starts: assume > 1) and picks this rank's GPU before the communicator binds one.
  const dml::LaunchEnvironment launch = dml::read_launch_environment();
  dml::log::set_rank(launch.rank, /*world_size=*/2);
  dml::TrainOptions options;
  dml::TrainConfig config;
  try {
    if (!dml::parse_options(argc, argv, options)) return 0;
    config = dml::make_train_config(options, launch.local_rank);
    config.run.options_text = dml::describe_options(options);
  } catch (const std::exception& e) {
    dml::log::error("cli", e.what());
    return 2;
  }
  std::unique_ptr<dml::Communicator> comm;
  try {
    const dml::Backend backend = dml::parse_backend(options.backend);
    const c10::Device& first = config.devices.front();
    comm = dml::make_communicator(backend, first.is_cuda() ? first.index() : -1);
    comm->set_collective_timeout(options.collective_timeout);
    torch::set_num_threads(dml::resolve_thread_count(options.threads, comm->local_size()));
    dml::log::info("train", "resolved configuration (" + std::to_string(torch::get_num_threads()) +
                                " threads per rank):\n" + config.run.options_text);
    dml::install_stop_signal_handlers();
    dml::Trainer trainer(config, *comm);
    const dml::TrainSummary summary = trainer.run();
    if (comm->rank() == 0) print_summary(summary);
    comm->barrier();
    return 0;
  } catch (const std::exception& e) {
    dml::log::error("train", dml::describe_error(e));
    if (comm && comm->world_size() > 1) comm->abort(1);
    return 1;
  }
}
