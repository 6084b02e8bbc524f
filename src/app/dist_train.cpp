// dist_train: the distributed trainer. Single process (`dist_train ...`), under `mpirun -np N`, or
// under Slurm `srun`. One catch here logs the error and ends every rank.
#include <torch/torch.h>

#include <cstdio>
#include <iostream>

#include "dml/cli/options.h"
#include "dml/dist/communicator.h"
#include "dml/eval/retrieval_metrics.h"
#include "dml/train/devices.h"
#include "dml/train/stop_signal.h"
#include "dml/train/trainer.h"
#include "dml/util/error.h"
#include "dml/util/log.h"

namespace {

dml::Backend choose_backend(const dml::TrainOptions& options) {
  if (options.run.backend != "auto") return dml::parse_backend(options.run.backend);
  // GPU ranks talk over NCCL when it is built; everything else over MPI (or alone).
  const auto devices = dml::resolve_replica_devices(options.run, dml::local_rank_from_environment());
  const auto built = dml::built_backends();
  const bool nccl_built = std::find(built.begin(), built.end(), "nccl") != built.end();
  if (devices.front().is_cuda() && nccl_built) return dml::Backend::kNccl;
  return dml::Backend::kAuto;
}

void print_summary(const dml::TrainSummary& summary) {
  std::vector<std::pair<std::string, dml::RetrievalMetrics>> columns;
  if (summary.has_untrained) columns.emplace_back("untrained", summary.untrained);
  if (summary.has_best) columns.emplace_back("best (epoch " + std::to_string(summary.best_epoch) + ")", summary.best);
  if (summary.has_last) columns.emplace_back("last", summary.last);
  std::printf("\nSteps run: %lld, %.1f images/s%s\n", static_cast<long long>(summary.steps_run), summary.images_per_sec,
              summary.stopped_by_signal ? " (stopped by signal; resume with --resume <prefix>-last.pt)" : "");
  if (!columns.empty()) std::printf("\n%s\n", dml::format_metrics_table(columns).c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  // Before MPI starts, tag option errors with the launcher's rank (world size unknown: assume > 1).
  dml::log::set_rank(dml::rank_from_environment(), /*world_size=*/2);
  dml::TrainOptions options;
  try {
    if (!dml::parse_options(argc, argv, options)) return 0;
  } catch (const std::exception& e) {
    dml::log::error("cli", e.what());
    return 2;
  }
  std::unique_ptr<dml::Communicator> comm;
  try {
    comm = dml::make_communicator(choose_backend(options));
    dml::log::set_rank(comm->rank(), comm->world_size());
    torch::set_num_threads(dml::resolve_thread_count(options.run, comm->local_size()));
    dml::log::info("train", "resolved configuration (" + std::to_string(torch::get_num_threads()) +
                                " threads per rank):\n" + dml::describe_options(options));
    dml::install_stop_signal_handlers();
    dml::Trainer trainer(options, *comm);
    const dml::TrainSummary summary = trainer.run();
    if (comm->rank() == 0) print_summary(summary);
    comm->barrier();
    return 0;
  } catch (const std::exception& e) {
    dml::log::error("train", e.what());
    if (comm && comm->world_size() > 1) comm->abort(1);
    return 1;
  }
}
