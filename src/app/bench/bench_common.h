// Pieces that dml_bench_train's modes share: the --bench-* settings, a minimal JSON writer, how a
// configuration is described in the table and the JSON, and the gradient buckets' layout. One file
// per mode beside this one (bench_train.cpp, bench_loader.cpp, bench_allreduce.cpp, bench_project.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dml {
struct TrainOptions;
struct TrainConfig;
class Communicator;
}  // namespace dml

namespace dml::bench {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

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

// Peak resident memory of this process so far, MiB.
double peak_rss_mb();

// ---- a minimal JSON writer ------------------------------------------------------------------------
std::string quote(const std::string& s);
std::string num(double v);  // 6 significant digits; null when not finite
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
  std::string str() const;
};
std::string array(const std::vector<std::string>& items);  // items already serialised
std::string array(const std::vector<int64_t>& items);
void write_json(const std::string& path, const Json& j);   // nothing when path is empty

// ---- the configuration, as dist_train describes it -------------------------------------------------
Json describe_config(const TrainOptions& options, const TrainConfig& c, int ranks, int threads);
std::string describe_line(const TrainOptions& options, const TrainConfig& c, int ranks, int threads);

// The trainable tensors in the Trainer's order (network, then beta) and their gradient buckets as the
// Trainer builds them. Collective (GradientBuckets compares layouts): every rank calls it.
struct Layout {
  int64_t parameters = 0, bytes = 0;
  std::vector<int64_t> bucket_bytes;
};
Layout gradient_layout(const TrainConfig& c, int64_t num_classes, Communicator& comm);
std::string mb_list(const std::vector<int64_t>& bytes);  // "1.00, 30.0 MiB"

// ---- the modes (each prints its table on rank 0 and writes --bench-json) ----------------------------
int run_train(const BenchOptions& b, const TrainOptions& options, TrainConfig config, Communicator& comm);
int run_loader(const BenchOptions& b, const TrainOptions& options, const TrainConfig& config);
int run_allreduce(const BenchOptions& b, Communicator& comm);
int run_project(const BenchOptions& b, const TrainOptions& options, const TrainConfig& c, Communicator& comm);

}  // namespace dml::bench
