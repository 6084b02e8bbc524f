// dml_bench_train: training-speed benchmark of dist_train's own Trainer. Takes every dist_train flag
// (parsed by the same dml::parse_options / make_train_config) plus the --bench-* flags below, runs one
// measurement, prints a table (rank 0) and writes it as JSON (--bench-json). Measures only; asserts
// nothing. launch/bench.sh runs the whole suite and compares the results.
//
//   dml_bench_train [--bench-mode train|loader|allreduce|project] [--bench-steps N] [--bench-warmup W]
//                   [--bench-json FILE] [--bench-label TEXT] [other --bench-* flags] [dist_train flags...]
//   mpirun -np 2 ... dml_bench_train --bench-mode allreduce ...
//
// Modes:
//  train      dml::Trainer exactly as dist_train builds it, with --time-phases. Warm-up is excluded by
//             difference: in one process, trainer P runs --bench-process-warmup steps (oneDNN primitives,
//             allocator, thread pool: process warm-up; discarded), trainer A runs W steps, trainer B runs
//             W + N steps; both A and B end with the same evaluation (--max-test-images) and checkpoint.
//             images/s = N x global batch / (wall(B.run) - wall(A.run)); ms per phase = (B - A) / N, i.e.
//             steps W+1 .. W+N of a fresh trainer in a warm process. "other" = wall - phases (zero_grad,
//             the loop's bookkeeping, and the noise of the two final evaluations/checkpoints).
//  loader     TrainLoader over the train shards (--data-path, --crop-size, --batch-size, --batch-k,
//             --preload-max-mb) for each worker count of --bench-workers; times next() with nothing else
//             running: the producers' throughput.
//  allreduce  Communicator::start_all_reduce_sum + wait (the gradient buckets' path) and all_reduce_sum
//             (with the shape agreement) of float32 buffers, sizes --bench-min-bytes .. --bench-max-bytes
//             (x4); busbw = algbw x 2(n-1)/n. Run under mpirun with --backend mpi.
//  project    A scaling projection for --bench-gpus (default 8,64,512) GPUs at --batch-size per GPU: the
//             bucket layout of the model's gradients (GradientBuckets itself), the gather, sampling + loss
//             timed here at each global batch, and assumed NCCL ring bus bandwidths; see print_projection.
#include <sys/resource.h>
#include <unistd.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/flag_format.h"
#include "dml/cli/options.h"
#include "dml/cli/train_config.h"
#include "dml/data/shard_set.h"
#include "dml/dist/communicator.h"
#include "dml/dist/gradient_buckets.h"
#include "dml/dist/launch_environment.h"
#include "dml/loss/distance_weighted_sampling.h"
#include "dml/loss/margin_loss.h"
#include "dml/model/embedding_net.h"
#include "dml/pipeline/batch_sampler.h"
#include "dml/pipeline/loaders.h"
#include "dml/train/devices.h"
#include "dml/train/shard_image_source.h"
#include "dml/train/trainer.h"
#include "dml/util/error.h"
#include "dml/util/host_allocator.h"
#include "dml/util/log.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct BenchOptions {
  std::string mode = "train";
  int64_t steps = 10;
  int64_t warmup = 2;
  int64_t process_warmup = 1;
  std::string json;
  std::string label;
  std::string tmp_dir;  // checkpoints of the benchmark's trainers; default /dev/shm or the temp directory
  // loader
  std::string workers = "1,2,4";
  double min_seconds = 1.5;  // per loader configuration
  int64_t max_batches = 20000;
  // allreduce
  int64_t min_bytes = 4096;
  int64_t max_bytes = int64_t{64} << 20;
  int64_t size_factor = 4;
  // project
  std::string gpus = "8,64,512";
  int64_t gpus_per_node = 8;
  double nvlink_busbw_gbs = 150;   // NCCL ring all-reduce bus bandwidth within an H200 node (GB/s)
  double ib_busbw_gbs = 25;        // across nodes: one 200 Gb/s InfiniBand NIC per GPU (GB/s)
  double latency_intra_us = 10;    // per collective within a node
  double latency_inter_us = 30;    // per collective across nodes
  double forward_ms_per_image = 0;   // measured here (train mode at the same model and crop)
  double backward_ms_per_image = 0;
  double optimizer_ms = 0;           // per step (does not scale with the batch)
  double gpu_images_per_sec = 2500;  // assumed training rate of one GPU at this model / crop / batch
  int64_t sampling_iters = 5;
};

// Splits argv into the --bench-* flags (each with its value, "--bench-x v" or "--bench-x=v") and the rest.
void split_args(int argc, char** argv, std::vector<std::string>& bench, std::vector<std::string>& rest) {
  rest.push_back(argv[0]);
  bench.push_back(argv[0]);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--bench-", 0) == 0) {
      bench.push_back(a);
      if (a.find('=') == std::string::npos && i + 1 < argc) bench.push_back(argv[++i]);
    } else {
      rest.push_back(a);
    }
  }
}

std::vector<const char*> c_args(const std::vector<std::string>& v) {
  std::vector<const char*> out;
  for (const auto& s : v) out.push_back(s.c_str());
  return out;
}

boost::program_options::options_description bench_flags(BenchOptions& o) {
  namespace po = boost::program_options;
  po::options_description f("dml_bench_train flags (all other flags are dist_train's; see dist_train --help)");
  f.add_options()
      ("bench-mode", dml::cli::value(&o.mode), "train | loader | allreduce | project")
      ("bench-steps", dml::cli::value(&o.steps), "train: timed steps N")
      ("bench-warmup", dml::cli::value(&o.warmup), "train: untimed steps W of each trainer (subtracted)")
      ("bench-process-warmup", dml::cli::value(&o.process_warmup), "train: steps of the discarded first trainer (0 = none)")
      ("bench-json", dml::cli::value(&o.json), "write the result to this JSON file (rank 0)")
      ("bench-label", dml::cli::value(&o.label), "name of this configuration in the table and the JSON")
      ("bench-tmp", dml::cli::value(&o.tmp_dir), "directory for the trainers' checkpoints (default /dev/shm)")
      ("bench-workers", dml::cli::value(&o.workers), "loader: worker counts, comma-separated")
      ("bench-min-seconds", dml::cli::value(&o.min_seconds), "loader: seconds timed per worker count")
      ("bench-max-batches", dml::cli::value(&o.max_batches), "loader: at most this many timed batches")
      ("bench-min-bytes", dml::cli::value(&o.min_bytes), "allreduce: smallest buffer")
      ("bench-max-bytes", dml::cli::value(&o.max_bytes), "allreduce: largest buffer")
      ("bench-size-factor", dml::cli::value(&o.size_factor), "allreduce: ratio of consecutive sizes")
      ("bench-gpus", dml::cli::value(&o.gpus), "project: GPU counts")
      ("bench-gpus-per-node", dml::cli::value(&o.gpus_per_node), "project: GPUs per node")
      ("bench-nvlink-busbw", dml::cli::value(&o.nvlink_busbw_gbs), "project: NCCL ring busbw within a node, GB/s")
      ("bench-ib-busbw", dml::cli::value(&o.ib_busbw_gbs), "project: NCCL ring busbw across nodes, GB/s")
      ("bench-latency-intra-us", dml::cli::value(&o.latency_intra_us), "project: latency per collective in a node")
      ("bench-latency-inter-us", dml::cli::value(&o.latency_inter_us), "project: latency per collective across nodes")
      ("bench-forward-ms-per-image", dml::cli::value(&o.forward_ms_per_image), "project: measured forward ms per image")
      ("bench-backward-ms-per-image", dml::cli::value(&o.backward_ms_per_image), "project: measured backward ms per image")
      ("bench-optimizer-ms", dml::cli::value(&o.optimizer_ms), "project: measured optimiser ms per step")
      ("bench-gpu-images-per-sec", dml::cli::value(&o.gpu_images_per_sec), "project: assumed training images/s of one GPU")
      ("bench-sampling-iters", dml::cli::value(&o.sampling_iters), "project: timed sampling + loss calls per size");
  return f;
}

bool parse_bench(const std::vector<std::string>& args, BenchOptions& o) {
  namespace po = boost::program_options;
  const auto flags = bench_flags(o);
  std::vector<const char*> argv = c_args(args);
  po::variables_map vm;
  try {
    po::store(dml::cli::last_occurrences(
                  po::command_line_parser(static_cast<int>(argv.size()), argv.data()).options(flags).run()),
              vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw dml::Error(dml::str(e.what(), "; see dml_bench_train --help"));
  }
  dml::check(o.mode == "train" || o.mode == "loader" || o.mode == "allreduce" || o.mode == "project",
             "--bench-mode must be train, loader, allreduce or project, got '", o.mode, "'");
  dml::check(o.steps >= 1 && o.warmup >= 1 && o.process_warmup >= 0,
             "--bench-steps and --bench-warmup must be >= 1, --bench-process-warmup >= 0");
  dml::check(o.min_bytes >= 4 && o.max_bytes >= o.min_bytes && o.size_factor >= 2, "bad --bench-*-bytes / factor");
  return true;
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: kB
}

// ---- a minimal JSON writer ------------------------------------------------------------------------
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}
std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}
struct Json {
  std::vector<std::pair<std::string, std::string>> fields;  // key -> serialised value
  Json& add(const std::string& k, double v) { return raw(k, num(v)); }
  Json& add(const std::string& k, int64_t v) { return raw(k, std::to_string(v)); }
  Json& add(const std::string& k, int v) { return raw(k, std::to_string(v)); }
  Json& add(const std::string& k, bool v) { return raw(k, v ? "true" : "false"); }
  Json& add(const std::string& k, const std::string& v) { return raw(k, quote(v)); }
  Json& add(const std::string& k, const char* v) { return raw(k, quote(v)); }
  Json& add(const std::string& k, const Json& v) { return raw(k, v.str()); }
  Json& raw(const std::string& k, const std::string& v) {
    fields.emplace_back(k, v);
    return *this;
  }
  std::string str() const {
    std::string out = "{";
    for (size_t i = 0; i < fields.size(); ++i) out += (i ? ", " : "") + quote(fields[i].first) + ": " + fields[i].second;
    return out + "}";
  }
};
std::string array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out + "]";
}
std::string array(const std::vector<int64_t>& items) {
  std::vector<std::string> s;
  for (auto v : items) s.push_back(std::to_string(v));
  return array(s);
}
void write_json(const std::string& path, const Json& j) {
  if (path.empty()) return;
  std::ofstream out(path);
  dml::check(static_cast<bool>(out), "--bench-json: cannot write ", path);
  out << j.str() << "\n";
}

// ---- the configuration, as dist_train describes it -------------------------------------------------
Json describe_config(const dml::TrainOptions& options, const dml::TrainConfig& c, int ranks, int threads) {
  Json j;
  j.add("model", c.model.name)
      .add("small_input_stem", c.model.small_input_stem)
      .add("crop_size", options.crop_size)
      .add("batch_size", c.batches.batch_size)
      .add("batch_k", options.batch_k)
      .add("embed_dim", c.model.embed_dim)
      .add("precision", options.precision)
      .add("channels_last", c.model.channels_last)
      .add("ranks", ranks)
      .add("threads", threads)
      .add("workers", c.data.workers)
      .add("prefetch", c.data.prefetch)
      .add("data_path", c.data.data_path);
  return j;
}

std::string describe_line(const dml::TrainOptions& options, const dml::TrainConfig& c, int ranks, int threads) {
  return dml::str(c.model.name, c.model.small_input_stem ? " (small stem)" : "", ", ", options.crop_size,
                  " px, batch ", c.batches.batch_size, "/", options.batch_k, " per rank, ", ranks, " rank(s) x ",
                  threads, " thread(s), ", options.precision, c.model.channels_last ? " + channels-last" : "");
}

// The trainable tensors in the Trainer's order (network, then beta) and their gradient buckets as the
// Trainer builds them. Collective (GradientBuckets compares layouts): every rank calls it.
struct Layout {
  int64_t parameters = 0, bytes = 0;
  std::vector<int64_t> bucket_bytes;
};
Layout gradient_layout(const dml::TrainConfig& c, int64_t num_classes, dml::Communicator& comm) {
  dml::EmbeddingNet net = dml::make_embedding_net(c.model, c.batches.seed);
  std::vector<torch::Tensor> trainable;
  for (auto& p : net->parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  if (c.loss.learn_beta && num_classes > 0) trainable.push_back(torch::zeros({num_classes}).requires_grad_(true));
  Layout layout;
  for (const auto& p : trainable) {
    layout.parameters += p.numel();
    layout.bytes += p.numel() * static_cast<int64_t>(p.element_size());
  }
  dml::GradientBuckets buckets(trainable, comm);
  layout.bucket_bytes = buckets.bucket_sizes_bytes();
  return layout;
}

std::string mb_list(const std::vector<int64_t>& bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) out += dml::str(i ? ", " : "", num(static_cast<double>(bytes[i]) / (1 << 20)));
  return out + " MiB";
}

// ---- train ------------------------------------------------------------------------------------------
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

// ---- loader -----------------------------------------------------------------------------------------
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

// ---- allreduce --------------------------------------------------------------------------------------
int run_allreduce(const BenchOptions& b, dml::Communicator& comm) {
  const int n = comm.world_size();
  const double factor = n > 1 ? 2.0 * (n - 1) / n : 1.0;
  if (comm.rank() == 0) {
    std::printf("dml_bench_train: allreduce  %s backend, %d ranks, float32 SUM; busbw = algbw x 2(n-1)/n = algbw x %.2f\n",
                comm.backend_name().c_str(), n, factor);
    std::printf("  %12s %6s %12s %12s %12s | %12s %12s   (all_reduce_sum, with shape agreement)\n", "bytes", "iters",
                "us", "algbw GB/s", "busbw GB/s", "us", "busbw GB/s");
  }
  std::vector<std::string> rows;
  {  // connections and MPI's internal buffers set up before the first timed size
    torch::Tensor warm = torch::ones({b.min_bytes / 4}, torch::kFloat32);
    for (int i = 0; i < 50; ++i) comm.start_all_reduce_sum(warm)->wait();
  }
  for (int64_t bytes = b.min_bytes; bytes <= b.max_bytes; bytes *= b.size_factor) {
    torch::Tensor t = torch::ones({bytes / 4}, torch::kFloat32);
    // The same count on every rank (lock-step): about 256 MiB moved per size, 5 .. 2000 calls.
    const int64_t iters = std::clamp<int64_t>((int64_t{256} << 20) / bytes, 5, 2000);
    double us[2] = {0, 0};
    for (int variant = 0; variant < 2; ++variant) {
      for (int i = 0; i < 3; ++i) {
        if (variant == 0) comm.start_all_reduce_sum(t)->wait();
        else comm.all_reduce_sum(t);
      }
      comm.barrier();
      const auto start = Clock::now();
      for (int64_t i = 0; i < iters; ++i) {
        if (variant == 0) comm.start_all_reduce_sum(t)->wait();
        else comm.all_reduce_sum(t);
      }
      torch::Tensor elapsed = torch::full({1}, seconds_since(start), torch::kFloat64);
      comm.all_reduce_sum(elapsed);  // mean over ranks
      us[variant] = 1e6 * elapsed.item<double>() / n / static_cast<double>(iters);
      t.fill_(1.0f);
    }
    const double algbw = static_cast<double>(bytes) / (us[0] * 1e-6) / 1e9;
    const double algbw1 = static_cast<double>(bytes) / (us[1] * 1e-6) / 1e9;
    if (comm.rank() == 0) {
      std::printf("  %12lld %6lld %12.1f %12.3f %12.3f | %12.1f %12.3f\n", static_cast<long long>(bytes),
                  static_cast<long long>(iters), us[0], algbw, algbw * factor, us[1], algbw1 * factor);
    }
    rows.push_back(Json()
                       .add("bytes", bytes)
                       .add("iters", iters)
                       .add("us", us[0])
                       .add("algbw_gbs", algbw)
                       .add("busbw_gbs", algbw * factor)
                       .add("us_blocking", us[1])
                       .add("busbw_gbs_blocking", algbw1 * factor)
                       .str());
  }
  if (comm.rank() != 0) return 0;
  std::fflush(stdout);
  Json j;
  j.add("mode", "allreduce").add("label", b.label).add("backend", comm.backend_name()).add("ranks", n)
      .add("busbw_factor", factor).add("peak_rss_mb", peak_rss_mb()).raw("results", array(rows));
  write_json(b.json, j);
  return 0;
}

// ---- project ----------------------------------------------------------------------------------------
// Sampling + margin loss, forward and backward, for `anchors` local anchors against a gathered batch of
// `global` rows (embed_dim, batch_k as configured), ms per call on this machine.
double sampling_ms(int64_t anchors, int64_t global, const dml::TrainConfig& c, int64_t iters) {
  const int64_t k = c.sampling.blocks.batch_k, dim = c.model.embed_dim;
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({global, dim});
  x = x / x.norm(2, 1, true);
  const int64_t classes = global / k;
  const torch::Tensor labels = torch::div(torch::arange(global, torch::kInt64), k, "floor");
  dml::MarginLossOptions lo = c.loss;
  lo.num_classes = classes;
  dml::MarginLoss loss(lo);
  double total = 0;
  for (int64_t i = 0; i < iters + 1; ++i) {
    const auto start = Clock::now();
    const torch::Tensor leaf = x.detach().requires_grad_(true);
    const dml::Triplets t = dml::sample_triplets(leaf, labels, 0, anchors, c.sampling, 123, static_cast<uint64_t>(i));
    const auto terms = loss->terms(leaf, labels, t);
    dml::MarginLossImpl::normalise(terms, terms.active_count).backward();
    leaf.grad().sum().item<double>();
    if (i > 0) total += seconds_since(start);
  }
  return 1e3 * total / static_cast<double>(iters);
}

struct Projection {
  double compute_ms, allreduce_ms, exposed_ms, gather_ms, sampling_ms, step_ms, efficiency, images_per_sec;
};

// One step of one GPU among n: forward, backward (the buckets' all-reduces overlap it), optimiser, the
// all-gather of the embeddings and its backward reduce-scatter, sampling + loss.
Projection project(int64_t n, const BenchOptions& b, const Layout& layout, double forward_ms, double backward_ms,
                   double optimizer_ms, double sampling_global_ms, double sampling_local_ms, int64_t global_batch,
                   int64_t embed_dim) {
  const bool inter = n > b.gpus_per_node;
  const double busbw = 1e9 * (inter ? b.ib_busbw_gbs : b.nvlink_busbw_gbs);  // bytes/s
  const double latency_ms = 1e-3 * (inter ? b.latency_inter_us : b.latency_intra_us);
  const double ring = 2.0 * static_cast<double>(n - 1) / static_cast<double>(n);
  // Buckets in all-reduce order; bucket i is ready when backward has produced its bytes (gradients
  // appear at a rate proportional to their bytes, in reverse registration order); the all-reduces run
  // one after the other.
  double ready_bytes = 0, end = 0, total = 0;
  for (int64_t bytes : layout.bucket_bytes) {
    ready_bytes += static_cast<double>(bytes);
    const double ready = backward_ms * ready_bytes / static_cast<double>(std::max<int64_t>(layout.bytes, 1));
    const double t = latency_ms + 1e3 * static_cast<double>(bytes) * ring / busbw;
    total += t;
    end = std::max(end, ready) + t;
  }
  Projection p{};
  p.compute_ms = forward_ms + backward_ms + optimizer_ms;
  p.allreduce_ms = total;
  p.exposed_ms = std::max(0.0, end - backward_ms);
  // All-gather forward + reduce-scatter backward of global_batch x embed_dim float32; bus factor (n-1)/n.
  const double gather_bytes = static_cast<double>(global_batch * embed_dim * 4);
  p.gather_ms = 2.0 * (latency_ms + 1e3 * gather_bytes * (n - 1) / n / busbw);
  p.sampling_ms = sampling_global_ms;
  p.step_ms = p.compute_ms + p.exposed_ms + p.gather_ms + p.sampling_ms;
  p.efficiency = (p.compute_ms + sampling_local_ms) / p.step_ms;
  p.images_per_sec = static_cast<double>(global_batch) * 1e3 / p.step_ms;
  return p;
}

int run_project(const BenchOptions& b, const dml::TrainOptions& options, const dml::TrainConfig& c, dml::Communicator& comm) {
  const int64_t local = c.batches.batch_size;
  const int64_t dim = c.model.embed_dim;
  const std::vector<int64_t> gpus = dml::cli::parse_int_list(b.gpus, "bench-gpus");
  const int64_t num_classes = 100;  // beta: a CUB-sized training split (negligible bytes)
  const Layout layout = gradient_layout(c, num_classes, comm);
  // Measured compute of this machine, scaled to `local` images; the GPU basis keeps its split.
  const double cpu_fwd = b.forward_ms_per_image * local, cpu_bwd = b.backward_ms_per_image * local;
  const double cpu_opt = b.optimizer_ms;
  const double cpu_total = cpu_fwd + cpu_bwd + cpu_opt;
  const double gpu_total = 1e3 * static_cast<double>(local) / b.gpu_images_per_sec;
  const double gpu_scale = cpu_total > 0 ? gpu_total / cpu_total : 0;
  const double local_sampling = sampling_ms(local, local, c, b.sampling_iters);

  std::printf("dml_bench_train: project  %s%s, %lld images per GPU, embed %lld\n",
              b.label.empty() ? "" : (b.label + ": ").c_str(), c.model.name.c_str(), static_cast<long long>(local),
              static_cast<long long>(dim));
  std::printf("  assumptions: %lld GPUs per node; NCCL ring all-reduce busbw %.0f GB/s within a node (NVLink), %.0f GB/s\n"
              "    across nodes (InfiniBand, one 200 Gb/s NIC per GPU); latency %.0f / %.0f us per collective;\n"
              "    t(all-reduce) = latency + bytes x 2(n-1)/n / busbw, buckets one after another, each ready when backward\n"
              "    has produced its share of the gradient bytes (reverse order), exposed = what ends after backward;\n"
              "    gather: all-gather of global batch x embed x 4 B forward + reduce-scatter backward, (n-1)/n, not overlapped;\n"
              "    sampling + loss timed on this CPU at each global batch (%lld local anchors); GPU rows scale it by the\n"
              "    backbone's CPU->GPU speed-up (x%.4f); efficiency = t(1 GPU, no communication) / t(n GPUs), weak scaling.\n",
              static_cast<long long>(b.gpus_per_node), b.nvlink_busbw_gbs, b.ib_busbw_gbs, b.latency_intra_us,
              b.latency_inter_us, static_cast<long long>(local), gpu_scale);
  std::printf("  gradients: %lld parameters, %.1f MiB fp32 in %zu buckets (%s)\n", static_cast<long long>(layout.parameters),
              static_cast<double>(layout.bytes) / (1 << 20), layout.bucket_bytes.size(), mb_list(layout.bucket_bytes).c_str());
  std::printf("  compute per step: this CPU %.1f ms (forward %.1f + backward %.1f + optimizer %.1f, measured, x%lld images);\n"
              "    GPU %.1f ms (assumed %.0f images/s per GPU, same split)\n",
              cpu_total, cpu_fwd, cpu_bwd, cpu_opt, static_cast<long long>(local), gpu_total, b.gpu_images_per_sec);
  std::printf("\n  %-5s %-6s %8s %11s %13s %13s | %-6s %9s %9s %9s %9s %9s %9s %10s\n", "GPUs", "nodes", "global",
              "gather MiB", "D per GPU", "sampling CPU", "basis", "compute", "allreduce", "exposed", "gather",
              "sampling", "step ms", "efficiency");
  std::printf("  %-5s %-6s %8s %11s %13s %13s | %-6s %9s %9s %9s %9s %9s %9s %10s\n", "", "", "batch", "per step",
              "entries", "ms (+bwd)", "", "ms", "ms total", "ms", "ms", "ms", "", "");
  std::vector<std::string> rows;
  for (int64_t n : gpus) {
    const int64_t global = n * local;
    const double sampl_cpu = sampling_ms(local, global, c, b.sampling_iters);
    const double gather_mib = static_cast<double>(global * dim * 4) / (1 << 20);
    const int64_t entries = local * global;  // distances (and weights) per GPU per step
    const int64_t nodes = (n + b.gpus_per_node - 1) / b.gpus_per_node;
    Json row;
    row.add("gpus", n).add("nodes", nodes).add("global_batch", global).add("gather_bytes", global * dim * 4)
        .add("distance_entries_per_gpu", entries).add("distance_flops_per_gpu", 2.0 * static_cast<double>(entries * dim))
        .add("sampling_ms_cpu", sampl_cpu);
    for (int basis = 0; basis < 2; ++basis) {
      const double s = basis == 0 ? 1.0 : gpu_scale;
      const Projection p = project(n, b, layout, cpu_fwd * s, cpu_bwd * s, cpu_opt * s, sampl_cpu * s,
                                   local_sampling * s, global, dim);
      char gather_text[32], sampl_text[32];
      std::snprintf(gather_text, sizeof gather_text, "%.2f", gather_mib);
      std::snprintf(sampl_text, sizeof sampl_text, "%.2f", sampl_cpu);
      const bool first = basis == 0;
      std::printf("  %-5s %-6s %8s %11s %13s %13s | %-6s %9.2f %9.2f %9.2f %9.2f %9.2f %9.1f %9.1f%%\n",
                  first ? std::to_string(n).c_str() : "", first ? std::to_string(nodes).c_str() : "",
                  first ? std::to_string(global).c_str() : "", first ? gather_text : "",
                  first ? std::to_string(entries).c_str() : "", first ? sampl_text : "", first ? "CPU" : "GPU",
                  p.compute_ms, p.allreduce_ms, p.exposed_ms, p.gather_ms, p.sampling_ms, p.step_ms,
                  100.0 * p.efficiency);
      row.add(basis == 0 ? "cpu" : "gpu", Json()
                                              .add("compute_ms", p.compute_ms)
                                              .add("allreduce_ms", p.allreduce_ms)
                                              .add("exposed_allreduce_ms", p.exposed_ms)
                                              .add("gather_ms", p.gather_ms)
                                              .add("sampling_ms", p.sampling_ms)
                                              .add("step_ms", p.step_ms)
                                              .add("efficiency", p.efficiency)
                                              .add("images_per_sec", p.images_per_sec));
    }
    rows.push_back(row.str());
  }
  std::printf("  sampling + loss at the local batch (%lld x %lld): %.2f ms on this CPU\n", static_cast<long long>(local),
              static_cast<long long>(local), local_sampling);
  std::fflush(stdout);
  Json assumptions;
  assumptions.add("gpus_per_node", b.gpus_per_node).add("nvlink_busbw_gbs", b.nvlink_busbw_gbs)
      .add("ib_busbw_gbs", b.ib_busbw_gbs).add("latency_intra_us", b.latency_intra_us)
      .add("latency_inter_us", b.latency_inter_us).add("gpu_images_per_sec", b.gpu_images_per_sec)
      .add("forward_ms_per_image", b.forward_ms_per_image).add("backward_ms_per_image", b.backward_ms_per_image)
      .add("optimizer_ms", b.optimizer_ms);
  Json j;
  j.add("mode", "project").add("label", b.label).add("model", c.model.name).add("crop_size", options.crop_size)
      .add("images_per_gpu", local).add("embed_dim", dim).add("parameters", layout.parameters)
      .add("parameter_bytes", layout.bytes).raw("bucket_bytes", array(layout.bucket_bytes))
      .add("assumptions", assumptions).add("sampling_ms_cpu_local", local_sampling)
      .add("cpu_compute_ms", cpu_total).add("gpu_compute_ms", gpu_total).raw("rows", array(rows));
  write_json(b.json, j);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dml::keep_host_memory();  // as dist_train does
  const dml::LaunchEnvironment launch = dml::read_launch_environment();
  dml::log::set_rank(launch.rank, /*world_size=*/2);
  BenchOptions bench;
  dml::TrainOptions options;
  dml::TrainConfig config;
  std::vector<std::string> bench_args, rest;
  split_args(argc, argv, bench_args, rest);
  for (const auto& a : rest) {
    if (a == "--help" || a == "-h") {
      std::cout << "dml_bench_train: benchmark of dist_train's trainer (see the comment at the top of "
                   "src/app/dml_bench_train.cpp)\n\n"
                << bench_flags(bench) << "\n";
      return 0;
    }
  }
  try {
    parse_bench(bench_args, bench);
    const std::vector<const char*> args = c_args(rest);
    if (!dml::parse_options(static_cast<int>(args.size()), args.data(), options)) return 0;
    config = dml::make_train_config(options, launch.local_rank);
    config.run.options_text = dml::describe_options(options);
  } catch (const std::exception& e) {
    dml::log::error("cli", dml::describe_error(e));
    return 2;
  }
  std::unique_ptr<dml::Communicator> comm;
  try {
    const dml::Backend backend = bench.mode == "project" ? dml::Backend::kSingle : dml::parse_backend(options.backend);
    const c10::Device& first = config.devices.front();
    comm = dml::make_communicator(backend, first.is_cuda() ? first.index() : -1);
    comm->set_collective_timeout(options.collective_timeout);
    dml::log::set_rank(comm->rank(), comm->world_size());
    torch::set_num_threads(dml::resolve_thread_count(options.threads, comm->local_size()));
    int rc = 0;
    if (bench.mode == "train") rc = run_train(bench, options, config, *comm);
    else if (bench.mode == "loader") rc = comm->rank() == 0 ? run_loader(bench, options, config) : 0;
    else if (bench.mode == "allreduce") rc = run_allreduce(bench, *comm);
    else rc = run_project(bench, options, config, *comm);
    comm->barrier();
    return rc;
  } catch (const std::exception& e) {
    dml::log::error("bench", dml::describe_error(e));
    if (comm && comm->world_size() > 1) comm->abort(1);
    return 1;
  }
}
