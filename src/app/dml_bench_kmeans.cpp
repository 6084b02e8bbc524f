// dml_bench_kmeans: the time and memory of dml's k-means (the NMI metric's clustering) at a given
// scale; by default Stanford Online Products' test split: 60,000 points of 128 dimensions into
// 11,316 clusters, one start. Points are synthetic: `k` class centres drawn uniformly from
// [-1, 1)^D, every point its class centre (point i has class i mod k) plus uniform noise of
// +-noise per dimension. Prints the setup, the time of the whole call, every start's rounds and
// inertia, and the peak resident memory during the call (the kernel's high-water mark, reset just
// before the call through /proc/self/clear_refs, so data generation does not count). Measures only;
// asserts nothing.
//
//   dml_bench_kmeans [--n N] [--dim D] [--k K] [--restarts R] [--max-iterations M] [--noise S]
//                    [--seed S] [--threads T]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "cli/flag_format.h"
#include "dml/eval/clustering.h"
#include "dml/util/counter_rng.h"
#include "dml/util/error.h"

namespace {

struct BenchOptions {
  int64_t n = 60000;
  int64_t dim = 128;
  int64_t k = 11316;
  int64_t restarts = 1;
  int64_t max_iterations = 100;
  double noise = 0.5;
  uint64_t seed = 123;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
};

// Returns false when --help was printed.
bool parse(int argc, char** argv, BenchOptions& o) {
  namespace po = boost::program_options;
  po::options_description flags("dml_bench_kmeans: time and peak memory of k-means (k-means++ + Lloyd, restarts)");
  flags.add_options()
      ("help,h", "print this help and exit")
      ("n", dml::cli::value(&o.n), "points")
      ("dim", dml::cli::value(&o.dim), "dimensions per point")
      ("k", dml::cli::value(&o.k), "clusters (and synthetic classes)")
      ("restarts", dml::cli::value(&o.restarts), "k-means++ starts; the lowest inertia is kept")
      ("max-iterations", dml::cli::value(&o.max_iterations), "assignment rounds per start")
      ("noise", dml::cli::value(&o.noise), "half-width of the uniform noise around each class centre (centres in [-1, 1)^D)")
      ("seed", dml::cli::value(&o.seed), "k-means seed (the data is fixed)")
      ("threads", dml::cli::value(&o.threads), "torch threads (default: the hardware threads)");
  po::variables_map vm;
  try {
    po::store(dml::cli::last_occurrences(po::command_line_parser(argc, argv).options(flags).run()), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw dml::Error(dml::str(e.what(), "; see dml_bench_kmeans --help"));
  }
  if (vm.count("help")) {
    std::cout << flags << "\n";
    return false;
  }
  dml::check(o.n >= 1 && o.dim >= 1, "--n and --dim must be >= 1, got ", o.n, " and ", o.dim);
  dml::check(o.k >= 1 && o.k <= o.n, "--k must be in [1, --n], got ", o.k);
  dml::check(o.noise >= 0, "--noise must be >= 0, got ", o.noise);
  dml::check(o.threads >= 1, "--threads must be >= 1, got ", o.threads);
  return true;
}

// A field of /proc/self/status in MiB ("VmHWM": peak resident set, "VmRSS": current), -1 if absent.
double status_mib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;  // kB
  }
  return -1;
}

// Resets the peak resident set (VmHWM) to the current one; false where the kernel does not allow it.
bool reset_peak_memory() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    BenchOptions o;
    if (!parse(argc, argv, o)) return 0;
    torch::set_num_threads(o.threads);
    dml::KMeansOptions km;
    km.restarts = o.restarts;
    km.max_iterations = o.max_iterations;
    dml::validate_kmeans_options(km);

    torch::NoGradGuard no_grad;
    const auto classes = torch::arange(o.n, torch::kInt64).remainder(o.k);
    const auto centres = dml::random_uniform_tensor({7, dml::RngStream::kInit, 0}, torch::arange(o.k, torch::kInt64), o.dim) * 2 - 1;
    const auto noise = dml::random_uniform_tensor({7, dml::RngStream::kInit, 1}, torch::arange(o.n, torch::kInt64), o.dim) * 2 - 1;
    const auto points = (centres.index_select(0, classes) + noise * o.noise).contiguous();
    std::printf("dml_bench_kmeans: N %lld, D %lld, k %lld, %lld start(s), max %lld rounds each, noise %g, %d thread(s)\n",
                static_cast<long long>(o.n), static_cast<long long>(o.dim), static_cast<long long>(o.k),
                static_cast<long long>(o.restarts), static_cast<long long>(o.max_iterations), o.noise,
                torch::get_num_threads());
    const bool peak_reset = reset_peak_memory();
    const double rss_before = status_mib("VmRSS");
    std::printf("resident memory before the call: %.0f MiB (the points: %.0f MiB)\n", rss_before,
                points.numel() * 4.0 / (1 << 20));
    std::fflush(stdout);

    const auto start = std::chrono::steady_clock::now();
    const dml::KMeansResult result = dml::kmeans(points, o.k, o.seed, km);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;

    for (size_t r = 0; r < result.restart_inertias.size(); ++r) {
      std::printf("  start %zu: %lld rounds, inertia %.6g%s\n", r, static_cast<long long>(result.restart_iterations[r]),
                  result.restart_inertias[r], static_cast<int64_t>(r) == result.best_restart ? "  (kept)" : "");
    }
    const double nmi = dml::normalized_mutual_information(classes, result.assignments);
    std::printf("time: %.1f s (%.1f s per start)\n", elapsed.count(), elapsed.count() / o.restarts);
    const double peak = status_mib("VmHWM");
    std::printf("peak resident memory %s: %.0f MiB (%.0f MiB above the resident memory before the call)\n",
                peak_reset ? "during the call" : "of the process (could not reset it)", peak, peak - rss_before);
    std::printf("NMI against the synthetic classes: %.4f\n", nmi);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dml_bench_kmeans: %s\n", e.what());
    return 1;
  }
}
