#include "app/bench/bench_common.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "dml/dist/communicator.h"

namespace dml::bench {

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

}  // namespace dml::bench
