#include "app/bench/bench_common.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/flag_format.h"
#include "dml/cli/options.h"
#include "dml/cli/train_config.h"
#include "dml/dist/communicator.h"
#include "dml/loss/distance_weighted_sampling.h"
#include "dml/loss/margin_loss.h"

namespace dml::bench {

namespace {

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

}  // namespace

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

}  // namespace dml::bench
