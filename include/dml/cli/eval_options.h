#pragma once
// Typed options of dist_eval, and their resolution against the checkpoint being evaluated.
#include <string>

#include "dml/train/checkpoint.h"
#include "dml/train/checkpoint_evaluation.h"

namespace dml {

struct EvalOptions {
  std::string checkpoint;     // required: <prefix>-best.pt or <prefix>-last.pt
  std::string data_path;      // empty: the data path the checkpoint was trained on
  std::string split = "test";
  std::string query_split;    // non-empty: query/gallery protocol, --split is the gallery
  std::string model;          // empty: the checkpoint's; otherwise must match it
  int64_t embed_dim = 0;      // 0: the checkpoint's; otherwise must match it
  int64_t crop_size = 0;      // 0: the checkpoint's training crop
  int64_t batch_size = 0;     // 0: the evaluation batch dist_train used (evaluation_batch_size)
  std::string recall_k = "1,2,4,8,16";
  bool nmi = false;
  int64_t kmeans_restarts = EvalConfig{}.kmeans_restarts;
  int64_t max_images = 0;
  int workers = DataConfig{}.workers;
  int prefetch = EvalConfig{}.prefetch;
  int64_t preload_max_mb = DataConfig{}.preload_max_bytes >> 20;
  std::string gpus = "auto";
  int gpus_per_rank = 0;
  int cpu_replicas = 1;
  std::string backend = "auto";
  int threads = 0;
  std::string metrics_json;   // empty: none
  std::string export_path;    // empty: none
  bool overwrite = false;
};

// Returns false when --help was printed. A repeated flag takes its last value. Throws dml::Error
// naming the flag on syntax errors.
bool parse_eval_options(int argc, const char* const* argv, EvalOptions& options);

// The evaluation of options.checkpoint: model, crop and data path from the checkpoint unless given
// (a given --model / --embed-dim that differs from the checkpoint is an error naming both), this
// rank's devices for `local_rank`, and every rule checked with flag names in the errors.
CheckpointEvaluationConfig make_eval_config(const EvalOptions& options, const CheckpointInfo& checkpoint,
                                            int local_rank);

}  // namespace dml
