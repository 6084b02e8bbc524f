#pragma once
// Wall time per phase of a training step, for benchmarks and --time-phases: start() begins a step,
// mark(phase) charges the time since the previous mark (or start) to `phase`. A sync function (e.g.
// CUDA's synchronise) runs before every reading, so asynchronous device work is charged to the
// phase that queued it; that costs speed, which is why it is off unless asked for. Disabled, every
// call does nothing.
#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace dml {

class PhaseTimer {
 public:
  PhaseTimer() = default;
  PhaseTimer(bool enabled, std::function<void()> sync) : enabled_(enabled), sync_(std::move(sync)) {}

  bool enabled() const { return enabled_; }
  void start() {
    if (!enabled_) return;
    if (sync_) sync_();
    last_ = std::chrono::steady_clock::now();
  }
  void mark(const std::string& phase) {
    if (!enabled_) return;
    if (sync_) sync_();
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    for (auto& entry : totals_) {
      if (entry.first == phase) {
        entry.second += seconds;
        return;
      }
    }
    totals_.emplace_back(phase, seconds);
  }
  // Total seconds per phase, in the order the phases were first marked.
  const std::vector<std::pair<std::string, double>>& totals() const { return totals_; }

 private:
  bool enabled_ = false;
  std::function<void()> sync_;
  std::chrono::steady_clock::time_point last_{};
  std::vector<std::pair<std::string, double>> totals_;
};

}  // namespace dml
