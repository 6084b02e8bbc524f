#pragma once
// Checkpoints (format version 1), written by rank 0 only, atomically (temporary file, fsync, rename).
// <prefix>-last.pt: full state -- model parameters and buffers, beta, both optimisers' moments and
//   update counts, epoch/step (the sampler and every random draw are keyed by (seed, step), so the
//   step is the whole sampler and RNG position), best Recall@1, and the resolved options.
// <prefix>-best.pt: the model for inference (parameters, buffers, model name, embedding size).
#include <map>
#include <string>
#include <vector>

#include "dml/eval/retrieval_metrics.h"
#include "dml/loss/margin_loss.h"
#include "dml/model/embedding_net.h"
#include "dml/optim/optimizer.h"

namespace dml {

constexpr int64_t kCheckpointFormatVersion = 1;

struct TrainingState {
  int64_t epoch = 0;             // the epoch the next step belongs to
  int64_t step = 0;              // the next global step to run
  double best_recall_at_1 = -1;  // best evaluation so far (-1: none)
  // The best evaluation's metrics and epoch (best_epoch -1: none), so that a resumed run reports the
  // same best as an uninterrupted one.
  int64_t best_epoch = -1;
  RetrievalMetrics best_metrics{};
};

// What must match for a resume to continue the same run.
struct RunSignature {
  std::string model;
  int64_t embed_dim = 0, batch_size = 0, batch_k = 0, total_replicas = 0;
  int64_t seed = 0;
  std::string optimizer;
  int64_t iterations_per_epoch = 0;
  std::string options_text;  // every resolved option, "key = value" lines
  // Keys of options_text that change the run: on resume, every one whose value differs from the
  // checkpoint's is listed (key, checkpoint value, this run's value) in one error -- or, with
  // allow_option_changes, in one warning. Empty: the fields above are compared instead (model,
  // embed_dim, batch_size, batch_k, seed, optimizer, iterations_per_epoch). total_replicas is always
  // compared. `override_hint` ends the error (how to continue anyway).
  std::vector<std::string> compared_options{};
  bool allow_option_changes = false;
  std::string override_hint{};
};

void save_checkpoint(const std::string& path, EmbeddingNet& net, MarginLoss& loss, const Optimizer& net_optimizer,
                     const Optimizer* beta_optimizer, const TrainingState& state, const RunSignature& signature);

// Restores everything save_checkpoint wrote into already-built objects, on the devices they are on
// (a checkpoint written on one GPU loads onto any device). Throws dml::Error naming the file and the
// field when the file is missing, of another format version, or from an incompatible run (including
// a model whose parameter names or shapes differ), and when the checkpoint learned beta but this
// run keeps it fixed (or the reverse).
TrainingState load_checkpoint(const std::string& path, EmbeddingNet& net, MarginLoss& loss, Optimizer& net_optimizer,
                              Optimizer* beta_optimizer, const RunSignature& expected);

void save_inference_model(const std::string& path, EmbeddingNet& net, const RunSignature& signature);
// What a <prefix>-best.pt or -last.pt says about the run that wrote it, read without building a
// model. `options` holds the "key = value" lines of every resolved option (e.g. "small-input-stem",
// "crop-size", "data-path"). Throws dml::Error naming the file when it is missing, is not a dml
// checkpoint, or has another format version.
struct CheckpointInfo {
  std::string model;
  int64_t embed_dim = 0;
  std::map<std::string, std::string> options;
};
CheckpointInfo read_checkpoint_info(const std::string& path);

// Loads a <prefix>-best.pt (or -last.pt) model's parameters and buffers into `net`.
void load_inference_model(const std::string& path, EmbeddingNet& net);

}  // namespace dml
