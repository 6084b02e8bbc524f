#include "dml/cli/train_config.h"

#include <map>
#include <sstream>

#include "dml/cli/options.h"
#include "dml/dist/communicator.h"
#include "dml/train/devices.h"
#include "cli/device_flags.h"
#include "dml/util/error.h"

namespace dml {
namespace {

using FlagMap = std::map<std::string, std::string>;

// Component field -> the flag that sets it, for errors raised anywhere (also at run time, e.g. a batch
// that needs more classes than the split has). Fields that several components share a name for are
// disambiguated per call below.
const FlagMap& default_flags() {
  static const FlagMap flags = {
      {"backend", "--backend"},
      {"batch_k", "--batch-k"},
      {"batch_size", "--batch-size"},
      {"cpu_replicas", "--cpu-replicas"},
      {"crop_size", "--crop-size"},
      {"cutoff", "--sampler-cutoff"},
      {"data_path", "--data-path"},
      {"embed_dim", "--embed-dim"},
      {"epochs", "--epochs"},
      {"epsilon", "--adam-epsilon"},
      {"eval_interval", "--eval-interval"},
      {"factor", "--factor"},
      {"gpus", "--gpus"},
      {"gpus_per_rank", "--gpus-per-rank"},
      {"iterations_per_epoch", "--iterations-per-epoch"},
      {"kind", "--optimizer"},
      {"kmeans_restarts", "--kmeans-restarts"},
      {"ks", "--recall-k"},
      {"log_interval", "--log-interval"},
      {"lr", "--lr"},
      {"margin", "--margin"},
      {"max_images", "--max-test-images"},
      {"max_steps", "--max-steps"},
      {"metrics_file", "--metrics-file"},
      {"momentum", "--momentum"},
      {"name", "--model"},
      {"nonzero_loss_cutoff", "--nonzero-loss-cutoff"},
      {"precision", "--precision"},
      {"prefetch", "--prefetch"},
      {"rank_local_shards", "--rank-local-shards"},
      {"save_model_prefix", "--save-model-prefix"},
      {"seed", "--seed"},
      {"step_epochs", "--steps"},
      {"threads", "--threads"},
      {"weight_decay", "--wd"},
      {"workers", "--workers"},
  };
  return flags;
}

std::string flag_message(const OptionError& e, const FlagMap& overrides) {
  auto it = overrides.find(e.field());
  if (it == overrides.end()) it = default_flags().find(e.field());
  if (it == default_flags().end()) return e.what();
  return it->second + ": " + e.what();
}

// Runs a component's validation; an OptionError comes back with the flag in front.
template <typename F>
void with_flags(F&& validate, const FlagMap& overrides = {}) {
  try {
    validate();
  } catch (const OptionError& e) {
    throw Error(flag_message(e, overrides));
  }
}

}  // namespace

DeviceRequest cli::device_request(const std::string& gpus, int gpus_per_rank, int cpu_replicas) {
  const struct {
    const std::string& gpus;
    int gpus_per_rank, cpu_replicas;
  } o{gpus, gpus_per_rank, cpu_replicas};  // the flags' values, under the names the messages use
  DeviceRequest request;
  request.cpu_replicas = o.cpu_replicas;
  if (o.gpus_per_rank > 0) {
    check(o.gpus == "auto", "--gpus-per-rank ", o.gpus_per_rank, " and --gpus ", o.gpus,
          " both choose the GPUs; give --gpus-per-rank N when several ranks share a node, or --gpus LIST for "
          "one process per node");
    request.kind = DeviceRequest::Kind::kGpusPerRank;
    request.gpus_per_rank = o.gpus_per_rank;
  } else if (o.gpus == "auto") {
    request.kind = DeviceRequest::Kind::kAuto;
  } else if (o.gpus.empty() || o.gpus == "cpu") {
    request.kind = DeviceRequest::Kind::kCpu;
  } else {
    request.kind = DeviceRequest::Kind::kGpuList;
    std::stringstream in(o.gpus);
    std::string item;
    while (std::getline(in, item, ',')) {
      char* end = nullptr;
      const long index = std::strtol(item.c_str(), &end, 10);
      check(end != item.c_str() && *end == '\0', "--gpus ", o.gpus, ": '", item, "' is not a GPU index; use e.g. --gpus 0,1");
      request.gpus.push_back(static_cast<int>(index));
    }
  }
  check(o.gpus_per_rank >= 0, "--gpus-per-rank is ", o.gpus_per_rank, "; use 0 (off) or a positive count");
  return request;
}

std::vector<c10::Device> cli::resolve_devices(const DeviceRequest& request, int local_rank) {
  std::vector<c10::Device> devices;
  with_flags([&] { devices = resolve_replica_devices(request, local_rank); });
  return devices;
}

std::string cli::flagged(const OptionError& e) { return flag_message(e, {}); }

TrainConfig make_train_config_without_devices(const TrainOptions& o) {
  TrainConfig c = o.config;
  // One --batch-k sets the layout that the sampler writes and the loss reads.
  c.batches.blocks = ClassBlocks{o.batch_k};
  c.sampling.blocks = c.batches.blocks;
  c.augment.crop_size = o.crop_size;
  c.augment.train = true;
  c.augment.out_channels = c.model.in_channels;
  c.data.preload_max_bytes = o.preload_max_mb << 20;
  with_flags([&] { c.network_optimizer.kind = parse_optimizer(o.optimizer); });
  with_flags([&] { c.model.precision = parse_precision(o.precision); });
  if (o.allreduce_overlap == "auto") {
    c.run.allreduce_overlap = RunConfig::Overlap::kAuto;
  } else if (o.allreduce_overlap == "on") {
    c.run.allreduce_overlap = RunConfig::Overlap::kOn;
  } else if (o.allreduce_overlap == "off") {
    c.run.allreduce_overlap = RunConfig::Overlap::kOff;
  } else {
    throw Error(str("--allreduce-overlap: '", o.allreduce_overlap, "' is not a choice; use auto, on or off"));
  }
  c.loss.learn_beta = o.lr_beta > 0;
  c.beta_optimizer = OptimizerOptions{};
  c.beta_optimizer.kind = OptimizerKind::kSgd;
  c.beta_optimizer.lr = o.lr_beta > 0 ? o.lr_beta : 0.0;
  c.beta_optimizer.weight_decay = 0;  // beta is not decayed (the reference gives it its own trainer)
  c.beta_optimizer.momentum = c.network_optimizer.momentum;
  // Evaluation runs forward only, so it takes larger batches than training.
  c.eval.batch_size = evaluation_batch_size(c.batches.batch_size);
  c.eval.crop_size = o.crop_size;
  c.eval.out_channels = c.model.in_channels;
  c.eval.workers = c.data.workers;
  c.eval.seed = c.batches.seed;
  c.run.resume_compared_options = run_changing_options();
  c.run.resume_override_hint = "to continue with this run's values anyway, add --resume-override";

  with_flags([&] { validate_batch_plan(c.batches); });
  with_flags([&] { validate_sampling(c.sampling); });
  with_flags([&] { validate_margin_loss(c.loss); });
  with_flags([&] { validate_model_options(c.model); });
  with_flags([&] { validate_optimizer(c.network_optimizer); });
  with_flags([&] { validate_optimizer(c.beta_optimizer); }, {{"lr", "--lr-beta"}});
  with_flags([&] { validate_lr_schedule(c.schedule.factor, c.schedule.step_epochs); });
  with_flags([&] { validate_loader_threads(c.data.workers, c.data.prefetch); });
  with_flags([&] { validate_eval_config(c.eval); });
  with_flags([&] { validate_run_config(c.run); });
  check(o.crop_size >= 1, "--crop-size is ", o.crop_size, "; use a positive crop");
  check(o.threads >= 0, "--threads is ", o.threads, "; use 0 (cores / ranks on this node) or a positive count");
  check(o.collective_timeout >= 0, "--collective-timeout is ", o.collective_timeout,
        "; use 0 (no limit) or a positive number of seconds");
  with_flags([&] { parse_backend(o.backend); });
  cli::device_request(o.gpus, o.gpus_per_rank, o.cpu_replicas);  // syntax of --gpus / --gpus-per-rank
  return c;
}

TrainConfig make_train_config(const TrainOptions& o, int local_rank) {
  TrainConfig c = make_train_config_without_devices(o);
  c.devices = cli::resolve_devices(cli::device_request(o.gpus, o.gpus_per_rank, o.cpu_replicas), local_rank);
  for (const auto& device : c.devices) with_flags([&] { check_precision_supported(c.model.precision, device); });
  return c;
}

std::string describe_error(const std::exception& error) {
  if (const auto* option = dynamic_cast<const OptionError*>(&error)) return cli::flagged(*option);
  return error.what();
}

}  // namespace dml
