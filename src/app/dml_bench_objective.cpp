// dml_bench_objective: how much of a training step the objective costs. Prints the time of
// distance-weighted sampling + margin loss (forward + backward) at embed 128 for batches 70 and 560,
// forward + backward of resnet50_v1 at 224 px and resnet18_v1 at 32 px, and the ratio of the objective
// to a resnet18_v1 step at batch 70 (target: under 5%). Measures only; asserts nothing.
//
//   dml_bench_objective [--threads N] [--iters N] [--device cpu|cuda] [--skip-models]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>

#include "cli/flag_format.h"
#include "dml/loss/distance_weighted_sampling.h"
#include "dml/loss/margin_loss.h"
#include "dml/model/embedding_net.h"
#include "dml/util/error.h"

namespace {

struct BenchOptions {
  int threads = 1;
  int iters = 20;
  std::string device = "cpu";
  bool skip_models = false;
};

// Returns false when --help was printed.
bool parse(int argc, char** argv, BenchOptions& o) {
  namespace po = boost::program_options;
  po::options_description flags("dml_bench_objective: the cost of the objective against a model step");
  flags.add_options()
      ("help,h", "print this help and exit")
      ("threads", dml::cli::value(&o.threads), "torch threads")
      ("iters", dml::cli::value(&o.iters), "timed iterations per case (after warm-up)")
      ("device", dml::cli::value(&o.device), "cpu or cuda")
      ("skip-models", dml::cli::switch_value(&o.skip_models), "time only the objective, not the models");
  po::variables_map vm;
  try {
    po::store(dml::cli::last_occurrences(po::command_line_parser(argc, argv).options(flags).run()), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw dml::Error(dml::str(e.what(), "; see dml_bench_objective --help"));
  }
  if (vm.count("help")) {
    std::cout << flags << "\n";
    return false;
  }
  dml::check(o.threads >= 1, "--threads must be >= 1, got ", o.threads);
  dml::check(o.iters >= 1, "--iters must be >= 1, got ", o.iters);
  return true;
}

// Mean milliseconds per call after `warmup` untimed calls. `call` returns a tensor whose value is read,
// which waits for asynchronous devices.
double time_ms(int iters, int warmup, const std::function<torch::Tensor()>& call) {
  for (int i = 0; i < warmup; ++i) call().item<double>();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) call().item<double>();
  const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
  return elapsed.count() / iters;
}

// Sampling + margin loss forward + backward for `anchors` of `batch` candidates (128-d, k = 5).
double objective_ms(int64_t batch, int64_t anchors, const BenchOptions& o, const torch::Device& device) {
  const int64_t k = 5, dim = 128;
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({batch, dim});
  x = (x / x.norm(2, 1, true)).to(device);
  const torch::Tensor labels = torch::div(torch::arange(batch, torch::kInt64), k, "floor").remainder(100).to(device);
  dml::MarginLoss loss(dml::MarginLossOptions{});
  loss->to(device);
  dml::SamplingOptions sampling;
  sampling.blocks.batch_k = k;
  uint64_t step = 0;
  return time_ms(o.iters, 2, [&]() {
    const torch::Tensor leaf = x.detach().requires_grad_(true);
    const dml::Triplets t = dml::sample_triplets(leaf, labels, 0, anchors, sampling, 123, step++);
    const auto terms = loss->terms(leaf, labels, t);
    const torch::Tensor value = dml::MarginLossImpl::normalise(terms, terms.active_count);
    value.backward();
    return leaf.grad().sum();
  });
}

// Forward + backward of an embedding net (sum of the embeddings as the loss).
double model_ms(const std::string& name, int64_t batch, int64_t pixels, bool small_stem, int iters,
                const torch::Device& device) {
  dml::ModelOptions mo;
  mo.name = name;
  mo.embed_dim = 128;
  mo.in_channels = 3;
  mo.small_input_stem = small_stem;
  dml::EmbeddingNet net = dml::make_embedding_net(mo, /*seed=*/1);
  net->to(device);
  net->train();
  const torch::Tensor images = torch::randn({batch, 3, pixels, pixels}).to(device);
  return time_ms(iters, 1, [&]() {
    net->zero_grad();
    const torch::Tensor out = net->forward(images);
    out.sum().backward();
    return out.select(0, 0).sum();
  });
}

}  // namespace

int main(int argc, char** argv) {
  try {
    BenchOptions o;
    if (!parse(argc, argv, o)) return 0;
    torch::set_num_threads(o.threads);
    const torch::Device device(o.device);
    std::printf("dml_bench_objective: device %s, %d thread(s), %d iterations (+ warm-up)\n", o.device.c_str(),
                o.threads, o.iters);

    std::printf("\nsampling + margin loss (forward + backward), embed 128, batch_k 5:\n");
    std::printf("  %-40s %10s %14s\n", "case", "ms/call", "anchors/s");
    double objective_70 = 0;
    struct Case {
      const char* label;
      int64_t batch, anchors;
    };
    for (const Case& c : {Case{"batch 70, 70 anchors", 70, 70}, Case{"batch 560, 560 anchors", 560, 560},
                          Case{"batch 560, 70 anchors (1 of 8)", 560, 70}}) {
      const double ms = objective_ms(c.batch, c.anchors, o, device);
      if (c.batch == 70) objective_70 = ms;
      std::printf("  %-40s %10.3f %14.0f\n", c.label, ms, 1000.0 * c.anchors / ms);
    }
    if (o.skip_models) return 0;

    // The models are slow on a CPU: a few iterations suffice for a rate.
    const int model_iters = std::max(1, std::min(o.iters, 5));
    std::printf("\nembedding net forward + backward (train mode, %d iterations):\n", model_iters);
    std::printf("  %-40s %10s %14s\n", "case", "ms/step", "images/s");
    const double r50 = model_ms("resnet50_v1", 8, 224, false, model_iters, device);
    std::printf("  %-40s %10.1f %14.1f\n", "resnet50_v1, 224 px, batch 8", r50, 8000.0 / r50);
    const double r18 = model_ms("resnet18_v1", 70, 32, true, model_iters, device);
    std::printf("  %-40s %10.1f %14.1f\n", "resnet18_v1, 32 px, small stem, batch 70", r18, 70000.0 / r18);

    std::printf("\nobjective / resnet18_v1 step at batch 70: %.2f%% (target < 5%%)\n", 100.0 * objective_70 / r18);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dml_bench_objective: %s\n", e.what());
    return 1;
  }
}
