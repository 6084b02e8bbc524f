// Runs SplitPlans: parallel decoding into SplitWriters, progress, summary.
#include "dml/data/prepare.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>

#include "dml/data/shard_writer.h"
#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml {
namespace fs = std::filesystem;

namespace {
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Progress of one split: a bar redrawn in place on a terminal, a line per 10% otherwise.
class Progress {
 public:
  Progress(std::string split, int64_t total, bool enabled)
      : split_(std::move(split)), total_(total), enabled_(enabled), terminal_(log::stderr_is_terminal()),
        start_(Clock::now()) {}

  void update(int64_t done, bool final) {
    if (!enabled_) return;
    const double rate = done / std::max(seconds_since(start_), 1e-9);
    if (terminal_) {
      const int width = 30;
      const int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
      std::fprintf(stderr, "\r[prepare] %-6s [%s%s] %lld/%lld  %.0f img/s%s", split_.c_str(),
                   std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                   static_cast<long long>(done), static_cast<long long>(total_), rate, final ? "\n" : "");
      std::fflush(stderr);
      return;
    }
    const int64_t decile = total_ > 0 ? 10 * done / total_ : 10;
    if (decile > last_decile_ || (final && !printed_final_)) {
      last_decile_ = decile;
      printed_final_ = final || done == total_;
      log::info("prepare", str(split_, ": ", done, "/", total_, " images (", total_ > 0 ? 100 * done / total_ : 100,
                               "%), ", static_cast<int64_t>(rate), " images/s"));
    }
  }

 private:
  std::string split_;
  int64_t total_;
  bool enabled_, terminal_;
  Clock::time_point start_;
  int64_t last_decile_ = 0;
  bool printed_final_ = false;
};

// Decodes every image of `plan` on `threads` threads into `writer`; rethrows the first error.
void run_split(const SplitPlan& plan, SplitWriter& writer, int threads, bool show_progress) {
  const int64_t total = writer.size();
  const int64_t bytes = plan.info.height * plan.info.width * plan.info.channels;
  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto work = [&] {
    std::vector<uint8_t> buffer(static_cast<size_t>(bytes));
    try {
      for (int64_t i = next++; i < total && !failed; i = next++) {
        plan.decode(i, buffer.data());
        writer.write_image(i, buffer.data());
        ++done;
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back(work);
  Progress progress(plan.info.split, total, show_progress);
  while (done < total && !failed) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    progress.update(done, false);
  }
  for (auto& worker : workers) worker.join();
  if (first_error) {
    if (show_progress && log::stderr_is_terminal()) std::fputc('\n', stderr);
    std::rethrow_exception(first_error);
  }
  progress.update(done, true);
}
}  // namespace

PrepareSummary prepare_splits(const std::vector<SplitPlan>& plans, const PrepareOptions& options) {
  const auto start = Clock::now();
  check(!options.output_dir.empty(), "--output is required: the directory that receives the shards");
  check(options.shards >= 1, "--shards ", options.shards, " must be >= 1");
  const auto existing = list_shard_files(options.output_dir);
  check(existing.empty() || options.overwrite, "output directory ", options.output_dir, " already holds shards (",
        existing.empty() ? "" : existing.front(), existing.size() > 1 ? ", ..." : "",
        "); pass --overwrite to replace them, or choose another --output directory");
  const int threads = options.threads > 0 ? options.threads
                                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  // Every writer exists before any image is decoded; they rename their files only at the end.
  std::vector<std::unique_ptr<SplitWriter>> writers;
  for (const auto& plan : plans) {
    check(static_cast<bool>(plan.decode), "split plan '", plan.info.split, "' has no decode function");
    writers.push_back(std::make_unique<SplitWriter>(options.output_dir, plan.info.split, plan.info, plan.labels,
                                                    plan.ids, options.shards, options.overwrite));
  }
  PrepareSummary summary;
  for (size_t s = 0; s < plans.size(); ++s) {
    log::info("prepare", str(plans[s].info.split, ": ", writers[s]->size(), " images of ", plans[s].info.num_classes,
                             " classes, ", plans[s].info.height, "x", plans[s].info.width, "x", plans[s].info.channels,
                             ", ", options.shards, " shard(s), ", threads, " thread(s)"));
    run_split(plans[s], *writers[s], threads, options.progress);
    summary.images += writers[s]->size();
    summary.classes += plans[s].info.num_classes;
  }
  for (auto& writer : writers) {
    for (const auto& path : writer->finish()) {
      summary.bytes += static_cast<int64_t>(fs::file_size(path));
      ++summary.shards;
    }
  }
  summary.seconds = seconds_since(start);
  return summary;
}

}  // namespace dml
