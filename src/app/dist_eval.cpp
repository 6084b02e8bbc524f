// dist_eval: evaluates a saved model on a split (or a query split against a gallery), alone or under
// mpirun/srun, across every rank and every replica; prints the metrics table, writes them as JSON and,
// with --export, the embeddings. One catch here logs the error and ends every rank.
#include <torch/torch.h>

#include <cstdio>

#include "dml/cli/eval_options.h"
#include "dml/cli/train_config.h"
#include "dml/dist/communicator.h"
#include "dml/dist/launch_environment.h"
#include "dml/eval/retrieval_metrics.h"
#include "dml/train/checkpoint_evaluation.h"
#include "dml/train/devices.h"
#include "dml/util/error.h"
#include "dml/util/host_allocator.h"
#include "dml/util/log.h"

int main(int argc, char** argv) {
  dml::keep_host_memory();  // see host_allocator.h: ~10% of a CPU step
  const dml::LaunchEnvironment launch = dml::read_launch_environment();
  dml::log::set_rank(launch.rank, /*world_size=*/2);
  dml::EvalOptions options;
  dml::CheckpointEvaluationConfig config;
  try {
    if (!dml::parse_eval_options(argc, argv, options)) return 0;
    config = dml::make_eval_config(options, dml::read_checkpoint_info(options.checkpoint), launch.local_rank);
  } catch (const std::exception& e) {
    dml::log::error("eval", e.what());
    return 2;
  }
  std::unique_ptr<dml::Communicator> comm;
  try {
    const c10::Device& first = config.devices.front();
    comm = dml::make_communicator(dml::parse_backend(options.backend), first.is_cuda() ? first.index() : -1);
    torch::set_num_threads(dml::resolve_thread_count(options.threads, comm->local_size()));
    dml::log::info("eval", dml::str(config.checkpoint, " (", config.model.name, ", ", config.model.embed_dim,
                                    "-d) on ", config.data.data_path, " split ", config.split,
                                    config.query_split.empty() ? "" : " against query split " + config.query_split,
                                    ": ", comm->world_size(), " ranks x ", config.devices.size(), " replicas, batch ",
                                    config.eval.batch_size, ", ", torch::get_num_threads(), " threads per rank"));
    const dml::CheckpointEvaluationResult result = dml::evaluate_checkpoint(config, *comm);
    if (comm->rank() == 0) {
      std::printf("\nEmbedded %lld images in %.1f s (%.1f images/s); with the metrics %.1f s\n\n%s",
                  static_cast<long long>(result.images), result.embed_seconds, result.images_per_sec, result.seconds,
                  dml::format_metrics_table({{config.query_split.empty() ? config.split : config.query_split + " vs " + config.split,
                                              result.metrics}}).c_str());
      if (!config.metrics_json.empty()) std::printf("metrics: %s\n", config.metrics_json.c_str());
      std::fflush(stdout);
    }
    comm->barrier();
    return 0;
  } catch (const std::exception& e) {
    dml::log::error("eval", dml::describe_error(e));
    if (comm && comm->world_size() > 1) comm->abort(1);
    return 1;
  }
}
