#pragma once
// Evaluating a saved model (what dist_eval runs): load a <prefix>-best.pt or -last.pt onto every
// replica of every rank, embed a split (or a query split against a gallery split), compute the
// retrieval metrics, and write them as JSON and, optionally, the embeddings as an export.
#include <c10/core/Device.h>

#include <string>
#include <vector>

#include "dml/dist/communicator.h"
#include "dml/model/embedding_net.h"
#include "dml/train/evaluator.h"
#include "dml/train/train_config.h"

namespace dml {

struct CheckpointEvaluationConfig {
  std::string checkpoint;            // the model file
  DataConfig data;                   // data_path, preload, workers, prefetch (train_split is unused)
  std::string split = "test";        // the evaluated split; the gallery when query_split is set
  std::string query_split;           // non-empty: query/gallery protocol (the query is not excluded)
  ModelOptions model;                // must match the checkpoint (resolved by the caller)
  std::vector<c10::Device> devices;  // this rank's replicas
  EvalConfig eval;
  std::string metrics_json;          // JSON object with every metric; empty = none
  std::string export_path;           // embedding export (data/embedding_export.h); empty = none
  bool overwrite = false;            // replace existing output files
};

struct CheckpointEvaluationResult {
  RetrievalMetrics metrics;  // rank 0
  int64_t images = 0;          // embedded images (query + gallery)
  double embed_seconds = 0;    // embedding only (loading, forward, gather)
  double images_per_sec = 0;   // images / embed_seconds
  double seconds = 0;          // embedding and metrics
};

// Collective: every rank calls it. Output paths are checked before any work (existing files are
// refused unless overwrite); outputs are written by rank 0, atomically.
CheckpointEvaluationResult evaluate_checkpoint(const CheckpointEvaluationConfig& config, Communicator& comm);

}  // namespace dml
