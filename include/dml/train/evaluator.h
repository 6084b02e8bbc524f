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
#include "dml/train/replica_group.h"

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
  int64_t kmeans_restarts = KMeansOptions{}.restarts;  // k-means++ starts for NMI; the lowest inertia wins
  uint64_t seed = 0;                          // k-means seed; the run's seed
  int64_t max_images = 0;                     // evaluate on a subset of this many images (0 = all)
  // Every rank's source holds only its own rows (rank-local shards): each rank embeds all of them and
  // the evaluated set is their concatenation in rank order; max_images then applies per rank.
  bool rank_local = false;
};

// ks non-empty with every K >= 1, batch_size >= 1, max_images >= 0. Throws OptionError ("ks",
// "batch_size", "max_images").
void validate_eval_config(const EvalConfig& config);

// The rows a subset of `max_images` evaluates: i * n / max_images for i < max_images, an evenly
// spaced subset so that a quick evaluation still sees every class in proportion; all rows when
// max_images is 0 or >= n.
std::vector<int64_t> evaluated_rows(int64_t n, int64_t max_images);

// The evaluation batch for a training batch: forward-only passes take at least 64 images.
int64_t evaluation_batch_size(int64_t training_batch_size);

struct Evaluation {
  RetrievalMetrics metrics;  // rank 0 only (other ranks: default)
  // Rank 0 only: float32 [N, D] CPU embeddings of the evaluated rows in row order (the gallery), and
  // of the query rows in query/gallery mode (undefined otherwise).
  torch::Tensor embeddings, query_embeddings;
  double embed_seconds = 0;  // wall time of embedding (loading + forward + gather), without the metrics
};

// Exact distributed evaluation. The evaluated rows are cut into batches of config.batch_size in row
// order; the batches are split contiguously over every replica of every rank (replica q of R takes
// batches [q*B/R, (q+1)*B/R)), each replica embeds its batches on its device in its own thread, and
// the embeddings are gathered in row order, padding removed before any metric. An image is always
// embedded in the same batch whatever the number of ranks and replicas, so the metrics do not depend
// on them. Same-set protocol (a query is excluded from its own neighbours), or, with a query source,
// query against gallery (nothing excluded).
class Evaluator {
 public:
  // Throws when a source has fewer than 2 classes among its evaluated rows, or a K of config.ks is
  // larger than the gallery (same-set: the gallery of a query is the other N - 1 images).
  Evaluator(Communicator& comm, ImageSource gallery, EvalConfig config, const ImageSource* query = nullptr);

  // Every rank calls it (lock-step collectives). Puts the replicas in eval mode and leaves them there.
  Evaluation evaluate(ReplicaGroup& replicas);
  int64_t num_images() const { return static_cast<int64_t>(gallery_.labels.size()); }
  int64_t num_query_images() const { return has_query_ ? static_cast<int64_t>(query_.labels.size()) : 0; }
  // Rows of the gallery (and query) source that are evaluated, in order (evaluated_rows).
  const std::vector<int64_t>& rows() const { return gallery_rows_; }
  const std::vector<int64_t>& query_rows() const { return query_rows_; }

 private:
  torch::Tensor embed(const ImageSource& source, ReplicaGroup& replicas);
  // Rank-local mode: the labels of every rank's rows, concatenated in rank order (collective).
  std::vector<int64_t> gather_labels(const std::vector<int64_t>& local) const;

  Communicator& comm_;
  ImageSource gallery_, query_;  // already restricted to the evaluated rows
  std::vector<int64_t> gallery_rows_, query_rows_;
  bool has_query_ = false;
  EvalConfig config_;
  std::vector<int64_t> evaluated_labels_;  // labels of the whole evaluated (gallery) set, every rank
};

}  // namespace dml
