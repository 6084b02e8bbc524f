#include "app/bench/bench_common.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "cli/flag_format.h"
#include "dml/cli/options.h"
#include "dml/cli/train_config.h"
#include "dml/data/shard_set.h"
#include "dml/pipeline/batch_sampler.h"
#include "dml/pipeline/loaders.h"
#include "dml/train/shard_image_source.h"

namespace dml::bench {

int run_loader(const BenchOptions& b, const dml::TrainOptions& options, const dml::TrainConfig& config) {
  const auto open_start = Clock::now();
  const dml::ShardSet shards =
      dml::ShardSet::open(config.data.data_path, config.data.train_split, config.data.preload_max_bytes);
  const double open_seconds = seconds_since(open_start);
  dml::BatchPlanOptions plan = config.batches;
  plan.replicas = 1;
  const dml::GlobalBatchSampler sampler(shards.labels(), shards.info().num_classes, plan);
  const dml::ImageSource source = dml::make_image_source(shards);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const auto& info = shards.info();
  const int64_t batch = plan.batch_size;
  std::printf("dml_bench_train: loader  %s%s: %lld train images %lldx%lldx%lld (%s), crop %lld, batch %lld/%lld, %d cores\n",
              b.label.empty() ? "" : (b.label + ": ").c_str(), config.data.data_path.c_str(),
              static_cast<long long>(shards.size()), static_cast<long long>(info.height),
              static_cast<long long>(info.width), static_cast<long long>(info.channels),
              shards.preloaded() ? "preloaded" : "read from the files", static_cast<long long>(options.crop_size),
              static_cast<long long>(batch), static_cast<long long>(options.batch_k), cores);
  std::printf("  %-8s %-9s %12s %16s\n", "workers", "prefetch", "images/s", "images/s/worker");
  std::vector<std::string> rows;
  double per_core = 0, best = 0;
  for (int64_t w : dml::cli::parse_int_list(b.workers, "bench-workers")) {
    const int workers = static_cast<int>(w);
    const int prefetch = std::max(config.data.prefetch, 2 * workers);
    dml::TrainLoader loader(source, sampler, 0, config.augment, 0, workers, prefetch, false);
    for (int i = 0; i < 2 * workers + 2; ++i) loader.next();  // pipeline full and warm
    const auto start = Clock::now();
    int64_t batches = 0;
    while (batches < b.max_batches && (batches < 5 || seconds_since(start) < b.min_seconds)) {
      loader.next();
      ++batches;
    }
    const double ips = static_cast<double>(batches * batch) / seconds_since(start);
    if (workers == 1) per_core = ips;
    best = std::max(best, ips);
    std::printf("  %-8d %-9d %12.0f %16.0f%s\n", workers, prefetch, ips, ips / workers,
                workers > cores ? "  (oversubscribed)" : "");
    rows.push_back(Json().add("workers", workers).add("prefetch", prefetch).add("images_per_sec", ips).add("batches", batches).str());
  }
  std::printf("  open %.2f s, peak RSS %.1f MiB\n", open_seconds, peak_rss_mb());
  std::fflush(stdout);
  Json j;
  j.add("mode", "loader")
      .add("label", b.label)
      .add("data_path", config.data.data_path)
      .add("images", shards.size())
      .add("height", info.height)
      .add("width", info.width)
      .add("channels", info.channels)
      .add("preloaded", shards.preloaded())
      .add("crop_size", options.crop_size)
      .add("batch_size", batch)
      .add("cores", cores)
      .add("images_per_sec_one_worker", per_core)
      .add("images_per_sec_best", best)
      .add("open_seconds", open_seconds)
      .add("peak_rss_mb", peak_rss_mb())
      .raw("results", array(rows));
  write_json(b.json, j);
  return 0;
}

}  // namespace dml::bench
