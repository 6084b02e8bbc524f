#include "app/bench/bench_common.h"

#include <unistd.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "dml/cli/options.h"
#include "dml/cli/train_config.h"
#include "dml/data/shard_set.h"
#include "dml/dist/communicator.h"
#include "dml/train/trainer.h"
#include "dml/util/error.h"

namespace dml::bench {

namespace {

struct RunResult {
  double setup_seconds = 0;  // the Trainer's constructor (data, model, loaders)
  double seconds = 0;        // wall time of Trainer::run
  std::map<std::string, double> phases;
  std::vector<std::string> order;
};

RunResult run_trainer(dml::TrainConfig config, int64_t steps, dml::Communicator& comm) {
  config.run.max_steps = steps;
  const auto setup = Clock::now();
  dml::Trainer trainer(config, comm);
  comm.barrier();
  const double setup_seconds = seconds_since(setup);
  const auto start = Clock::now();
  const dml::TrainSummary summary = trainer.run();
  comm.barrier();
  RunResult r;
  r.seconds = seconds_since(start);
  r.setup_seconds = setup_seconds;
  for (const auto& [name, s] : summary.phase_seconds) {
    r.phases[name] += s;
    r.order.push_back(name);
  }
  return r;
}

}  // namespace

int run_train(const BenchOptions& b, const dml::TrainOptions& options, dml::TrainConfig config, dml::Communicator& comm) {
  const int threads = torch::get_num_threads();
  const int rank = comm.rank();
  dml::RunConfig& run = config.run;
  run.time_phases = true;
  run.progress = false;
  run.metrics_file.clear();
  run.eval_untrained = false;
  run.resume.clear();
  // One epoch holds every step, so no epoch-end evaluation or checkpoint falls inside the timed steps.
  run.iterations_per_epoch = std::max<int64_t>(run.iterations_per_epoch, b.warmup + b.steps + 1);
  run.epochs = 1;
  if (config.eval.max_images == 0) config.eval.max_images = 100;
  std::string tmp = b.tmp_dir;
  if (tmp.empty()) tmp = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
  run.save_model_prefix = (std::filesystem::path(tmp) / dml::str("dml_bench_train-", getpid())).string();

  const int64_t replicas = static_cast<int64_t>(config.devices.size()) * comm.world_size();
  const int64_t global_batch = replicas * config.batches.batch_size;
  if (b.process_warmup > 0) run_trainer(config, b.process_warmup, comm);
  const RunResult a = run_trainer(config, b.warmup, comm);
  const RunResult full = run_trainer(config, b.warmup + b.steps, comm);
  for (const char* suffix : {"-last.pt", "-best.pt"}) std::filesystem::remove(run.save_model_prefix + suffix);

  // Bucket layout (collective) and peak memory over ranks.
  int64_t num_classes = 0;
  try {
    num_classes = dml::ShardSet::open(config.data.data_path, config.data.train_split, 0).info().num_classes;
  } catch (const std::exception&) {
  }
  const Layout layout = gradient_layout(config, num_classes, comm);
  torch::Tensor rss = torch::zeros({comm.world_size()}, torch::kFloat64);
  rss[rank] = peak_rss_mb();
  comm.all_reduce_sum(rss);
  if (rank != 0) return 0;

  const double n = static_cast<double>(b.steps);
  const double wall = full.seconds - a.seconds;
  std::vector<std::pair<std::string, double>> phases;  // ms per timed step
  double phase_total = 0;
  for (const auto& name : full.order) {
    const double ms = 1e3 * (full.phases.at(name) - (a.phases.count(name) ? a.phases.at(name) : 0.0)) / n;
    phases.emplace_back(name, ms);
    phase_total += ms;
  }
  const double wall_ms = 1e3 * wall / n;
  auto phase_ms = [&](const std::string& name) {
    for (const auto& [k, v] : phases) {
      if (k == name) return v;
    }
    return 0.0;
  };
  const double compute_ms = phase_ms("forward") + phase_ms("backward") + phase_ms("optimizer");
  const double ips = static_cast<double>(global_batch) * n / wall;
  const double ips_phases = static_cast<double>(global_batch) * 1e3 / phase_total;
  const double rss_max = rss.max().item<double>();

  std::printf("dml_bench_train: train  %s%s\n", b.label.empty() ? "" : (b.label + ": ").c_str(),
              describe_line(options, config, comm.world_size(), threads).c_str());
  std::printf("  timed steps %lld after %lld warm-up (+ %lld process warm-up), global batch %lld, workers %d\n",
              static_cast<long long>(b.steps), static_cast<long long>(b.warmup),
              static_cast<long long>(b.process_warmup), static_cast<long long>(global_batch), config.data.workers);
  std::printf("  %-28s %10.1f   (trainer setup %.1f s, run %.1f s, not timed)\n", "images/s (wall)", ips,
              full.setup_seconds, full.seconds);
  std::printf("  %-28s %10.1f\n", "images/s (phase sum)", ips_phases);
  std::printf("  %-16s %10s %7s\n", "phase", "ms/step", "%");
  for (const auto& [name, ms] : phases) std::printf("  %-16s %10.2f %6.1f%%\n", name.c_str(), ms, 100.0 * ms / wall_ms);
  std::printf("  %-16s %10.2f %6.1f%%\n", "other", wall_ms - phase_total, 100.0 * (wall_ms - phase_total) / wall_ms);
  std::printf("  %-16s %10.2f\n", "total (wall)", wall_ms);
  std::printf("  %-28s %10.2f ms/step (forward + backward + optimizer)\n", "compute", compute_ms);
  std::printf("  %-28s %10.1f MiB (rank 0), %.1f MiB max over ranks\n", "peak RSS", rss[0].item<double>(), rss_max);
  std::printf("  %-28s %lld (%.1f MiB fp32), %zu buckets: %s\n", "gradients", static_cast<long long>(layout.parameters),
              static_cast<double>(layout.bytes) / (1 << 20), layout.bucket_bytes.size(), mb_list(layout.bucket_bytes).c_str());
  std::fflush(stdout);

  Json phase_json, pct_json;
  for (const auto& [name, ms] : phases) {
    phase_json.add(name, ms);
    pct_json.add(name, 100.0 * ms / wall_ms);
  }
  phase_json.add("other", wall_ms - phase_total);
  pct_json.add("other", 100.0 * (wall_ms - phase_total) / wall_ms);
  Json j;
  j.add("mode", "train")
      .add("label", b.label)
      .add("config", describe_config(options, config, comm.world_size(), threads))
      .add("steps", b.steps)
      .add("warmup", b.warmup)
      .add("process_warmup", b.process_warmup)
      .add("global_batch", global_batch)
      .add("images_per_sec", ips)
      .add("images_per_sec_phase_sum", ips_phases)
      .add("ms_per_step", wall_ms)
      .add("phase_ms_per_step", phase_json)
      .add("phase_percent", pct_json)
      .add("compute_ms_per_step", compute_ms)
      .add("peak_rss_mb", rss[0].item<double>())
      .add("peak_rss_mb_max_rank", rss_max)
      .add("parameters", layout.parameters)
      .add("parameter_bytes", layout.bytes)
      .raw("bucket_bytes", array(layout.bucket_bytes))
      .add("wall_seconds_warmup_trainer", a.seconds)
      .add("wall_seconds_timed_trainer", full.seconds)
      .add("setup_seconds_per_trainer", full.setup_seconds);
  write_json(b.json, j);
  return 0;
}

}  // namespace dml::bench
