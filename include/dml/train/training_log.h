#pragma once
// What rank 0 tells the user during training: one line every --log-interval iterations (epoch,
// iteration, loss, active pairs, mean beta, lr, images/s, ETA, and the non-finite steps skipped
// when there are any), a progress bar on a terminal, and
// the same records as JSON lines in --metrics-file (appended; one object per line).
#include <chrono>
#include <fstream>
#include <string>

namespace dml {

struct TrainRecord {
  int64_t epoch = 0, iteration = 0, step = 0;
  double loss = 0, active_pairs = 0, beta_mean = 0, lr = 0, images_per_sec = 0, eta_seconds = 0;
  int64_t skipped_nonfinite = 0;  // steps skipped so far in this process (--skip-nonfinite)
  double loss_scale = 0;          // fp16's dynamic loss scale; 0 = not fp16
};

class TrainingLog {
 public:
  // enabled = false on ranks other than 0: every call is then a no-op.
  TrainingLog(bool enabled, const std::string& metrics_file, bool progress_bar);
  ~TrainingLog();

  void train_record(const TrainRecord& record);
  // `fields` is the inside of a JSON object, e.g. "\"recall@1\": 0.5, ..." (metrics_json_fields()).
  void eval_record(int64_t epoch, int64_t step, const std::string& label, const std::string& fields);
  // Redraws the progress bar (terminal only) for iteration `done` of `total` in the epoch. It shows
  // no loss: reading one back every step would synchronise the host with the device.
  void progress(int64_t epoch, int64_t done, int64_t total);
  void end_progress();

 private:
  void write_json(const std::string& line);
  bool enabled_;
  bool progress_bar_;
  bool bar_visible_ = false;
  std::ofstream metrics_;
};

// Formats seconds as "1h02m", "3m05s" or "12s".
std::string format_duration(double seconds);

}  // namespace dml
