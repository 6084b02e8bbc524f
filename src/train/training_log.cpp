#include "dml/train/training_log.h"

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml {
namespace {
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream out;
  out << std::setprecision(8) << v;
  return out.str();
}
}  // namespace

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::max(0.0, seconds) + 0.5);
  char buffer[32];
  if (s >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s % 3600 / 60));
  } else if (s >= 60) {
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buffer, sizeof buffer, "%llds", static_cast<long long>(s));
  }
  return buffer;
}

TrainingLog::TrainingLog(bool enabled, const std::string& metrics_file, bool progress_bar)
    : enabled_(enabled), progress_bar_(enabled && progress_bar && log::stderr_is_terminal()) {
  if (enabled_ && !metrics_file.empty()) {
    metrics_.open(metrics_file, std::ios::app);
    check_option(metrics_.good(), "metrics_file", "metrics file ", metrics_file, ": cannot open for appending; check the directory exists and is writable");
  }
}

TrainingLog::~TrainingLog() { end_progress(); }

void TrainingLog::write_json(const std::string& line) {
  if (!metrics_.is_open()) return;
  metrics_ << line << '\n';
  metrics_.flush();
}

void TrainingLog::train_record(const TrainRecord& r) {
  if (!enabled_) return;
  end_progress();
  char line[256];
  std::snprintf(line, sizeof line,
                "epoch %lld iter %lld | loss %.4f | active pairs %.0f | beta %.4f | lr %.3g | %.1f img/s | ETA %s",
                static_cast<long long>(r.epoch), static_cast<long long>(r.iteration), r.loss, r.active_pairs, r.beta_mean,
                r.lr, r.images_per_sec, format_duration(r.eta_seconds).c_str());
  std::string text = line;
  if (r.loss_scale > 0) text += str(" | loss scale ", r.loss_scale);
  if (r.skipped_nonfinite > 0) text += str(" | skipped ", r.skipped_nonfinite, " non-finite");
  log::info("train", text);
  write_json(str("{\"epoch\": ", r.epoch, ", \"iteration\": ", r.iteration, ", \"step\": ", r.step,
                 ", \"loss\": ", json_number(r.loss), ", \"active_pairs\": ", json_number(r.active_pairs),
                 ", \"beta_mean\": ", json_number(r.beta_mean), ", \"lr\": ", json_number(r.lr),
                 ", \"images_per_sec\": ", json_number(r.images_per_sec), ", \"eta_seconds\": ", json_number(r.eta_seconds),
                 ", \"skipped_nonfinite\": ", r.skipped_nonfinite,
                 r.loss_scale > 0 ? str(", \"loss_scale\": ", json_number(r.loss_scale)) : std::string(), "}"));
}

void TrainingLog::eval_record(int64_t epoch, int64_t step, const std::string& label, const std::string& fields) {
  if (!enabled_) return;
  end_progress();
  write_json(str("{\"epoch\": ", epoch, ", \"step\": ", step, ", \"model\": \"", label, "\", ", fields, "}"));
}

void TrainingLog::progress(int64_t epoch, int64_t done, int64_t total) {
  if (!progress_bar_) return;
  const int width = 30;
  const int filled = total > 0 ? static_cast<int>(width * done / total) : 0;
  std::fprintf(stderr, "\r[train] epoch %lld [%s%s] %lld/%lld ", static_cast<long long>(epoch),
               std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), static_cast<long long>(done),
               static_cast<long long>(total));
  std::fflush(stderr);
  bar_visible_ = true;
}

void TrainingLog::end_progress() {
  if (!bar_visible_) return;
  std::fprintf(stderr, "\r%*s\r", 100, "");
  std::fflush(stderr);
  bar_visible_ = false;
}

}  // namespace dml
