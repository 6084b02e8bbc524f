#pragma once
// Exact distributed evaluation, so that every test image counts exactly once whatever the rank count:
// the test split (or an evenly spaced subset of it) is cut into one contiguous slice per rank, each
// rank embeds its slice once, the embeddings are gathered (padding removed before any metric), and
// rank 0 computes the metrics.
#include <torch/torch.h>

#include "dml/dist/communicator.h"
#include "dml/eval/retrieval_metrics.h"
#include "dml/model/embedding_net.h"
#include "dml/pipeline/loaders.h"
#include "dml/pipeline/normalize.h"

namespace dml {

// The crop, channels, loader threads and seed follow the training run's (the configuration builder
// copies them from AugmentOptions, DataConfig and BatchPlanOptions), so they have no defaults here.
struct EvalConfig {
  int64_t batch_size = 128;                   // images per forward (no autograd: larger than training's)
  int64_t crop_size = 0;                      // center crop; the training crop
  int64_t out_channels = 0;                   // the model's input channels
  int workers = 0;                            // loader threads
  int prefetch = 2;
  std::vector<int64_t> ks = {1, 2, 4, 8, 16};  // Recall@K list (the reference's)
  bool nmi = false;                           // also NMI of k-means (k = test classes)
  uint64_t seed = 0;                          // k-means seed; the run's seed
  int64_t max_images = 0;                     // evaluate on a subset of this many images (0 = all)
};

// ks non-empty with every K >= 1, batch_size >= 1, max_images >= 0. Throws OptionError ("ks",
// "batch_size", "max_images").
void validate_eval_config(const EvalConfig& config);

class Evaluator {
 public:
  Evaluator(Communicator& comm, ImageSource test_source, EvalConfig config);

  // Every rank calls it (lock-step collectives). Puts `net` in eval mode and leaves it there.
  // Returns the metrics on rank 0; other ranks get a default RetrievalMetrics.
  RetrievalMetrics evaluate(EmbeddingNet& net, const torch::Device& device);

  int64_t num_images() const { return static_cast<int64_t>(source_.labels.size()); }

 private:
  // float32 [rows, D] on CPU: the embeddings of source rows [begin, end).
  torch::Tensor embed_rows(EmbeddingNet& net, const torch::Device& device, int64_t begin, int64_t end);

  Communicator& comm_;
  ImageSource source_;  // already restricted to the evaluated subset
  EvalConfig config_;
};

}  // namespace dml
