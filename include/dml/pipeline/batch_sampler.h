#pragma once
// The global batch-k sampler: a batch is batch_size/batch_k distinct classes, then batch_k distinct
// images of each, as in the reference, but drawn once for the whole global batch so that R replicas of
// batch B see exactly the batches one replica of batch R*B would. Every rank builds the same sampler and
// asks it for the same step; the answer is a pure function of (seed, step) and the labels.
//
// Rules, for one step, with R replicas, B rows per replica, k = batch_k, g = B/k classes per replica,
// G = R*g classes in the global batch and C = number of classes that have at least one image:
//
// 1. Class sequence. Permutation p (p = 0, 1, ...) is a forward Fisher-Yates shuffle of the ids of the C
//    non-empty classes (ascending), position i swapped with i + random_below(C - i) drawn from
//    RngKey{seed, kClasses, step}, index i, draw p. The class sequence is permutation 0, then 1, ...,
//    truncated to G entries; replica r owns sequence positions [r*g, (r+1)*g).
//    - G <= C: the sequence is the first G entries of permutation 0: G distinct classes drawn uniformly
//      without replacement. A forward shuffle fixes position i with draw i, so the first G entries do not
//      depend on G: the global batch of (R, B) equals the one of (1, R*B) (world-size invariance).
//    - G > C: a replica chunk that straddles permutations p and p+1 may see a class twice. Repair, chunks
//      in order: each entry of the chunk's permutation-(p+1) part that already occurs in the chunk's
//      permutation-p part is swapped (inside permutation p+1) with the first entry of permutation p+1
//      after the chunk that does not occur in the chunk's permutation-p part (one always exists as g <= C).
//      Permutations stay permutations, so no class recurs within a replica and every class occurs at most
//      ceil(G/C) times per step (each complete permutation holds it once).
// 2. Images of a class. For each class c with n_c images (rows in ascending order), a keyed permutation of
//    its rows: forward Fisher-Yates from RngKey{seed, kImages, step}, index c, draw i. The j-th occurrence
//    (j = 0, 1, ...) of c in the class sequence takes permutation positions (j*k + t) mod n_c, t = 0..k-1:
//    - n_c >= k: k distinct images drawn uniformly without replacement; recurrences use images disjoint from
//      the earlier ones while (j+1)*k <= n_c, then wrap around;
//    - n_c < k: drawn with replacement (a warning at construction): the block cycles through the permuted
//      images, so each appears floor(k/n_c) or ceil(k/n_c) times.
// 3. Layout. Sequence position q fills global rows [q*k, (q+1)*k): class blocks of k consecutive rows.
//
// Rank-local shards (shard_groups = S > 0). Each rank opens only its own shards, so the class sequence
// must let a rank draw its slice from them alone, and must not depend on the rank count. The sequence is
// stratified by shard: G/S consecutive positions per shard s = 0..S-1, filled with the first G/S entries
// of the forward Fisher-Yates shuffle (as rule 1) of shard s's non-empty classes, drawn from
// RngKey{seed, kClasses, step} with draw s. With rank r owning the contiguous shards
// [r*S/R, (r+1)*S/R), its replicas' positions hold exactly its shards' classes; one rank reading all
// shards draws the same batches. Requires G % S == 0 and G/S <= the classes of every visible shard.
// Classes of shards this sampler cannot see (shard_of_class = -1) are -1 in global_classes/labels.
#include <cstdint>
#include <vector>

#include "dml/util/class_blocks.h"

namespace dml {

struct BatchPlanOptions {
  int64_t replicas = 1;    // total replicas R in the job
  int64_t batch_size = 70; // per replica, B (multiple of blocks.batch_k); the reference's default
  ClassBlocks blocks;      // k = blocks.batch_k rows per class block
  uint64_t seed = 123;     // the reference's default seed
  // > 0: the class sequence is stratified by shard (rank-local shards, below): this many shards.
  int64_t shard_groups = 0;
};

// The rules that need no data: replicas >= 1, the block layout (validate_class_blocks), batch_size a
// positive multiple of batch_k holding at least 2 classes (negatives come from other classes), and a
// global batch below 2^31 rows. Throws OptionError naming the field ("replicas", "batch_size", "batch_k").
void validate_batch_plan(const BatchPlanOptions& options);

class GlobalBatchSampler {
 public:
  // labels: [N] row -> class in 0..num_classes-1. Validates validate_batch_plan(options), every label in
  // range, at least one class with images, B/k <= number of classes with at least one image. Classes with fewer
  // than batch_k images: one warning (log tag "data", rank 0 only) saying how many, then drawn with replacement.
  // shard_of_class: [num_classes] the shard (set index) of each class, -1 for classes not visible;
  // required when options.shard_groups > 0, ignored otherwise.
  GlobalBatchSampler(const std::vector<int64_t>& labels, int64_t num_classes, const BatchPlanOptions& options,
                     const std::vector<int64_t>& shard_of_class = {});

  // The whole global batch of `step`: R*B rows (indices into the ImageSource) in the layout above.
  std::vector<int64_t> global_batch(uint64_t step) const;
  // The global class sequence of `step`: R*B/k class ids, one per block.
  std::vector<int64_t> global_classes(uint64_t step) const;
  // The label of every row of global_batch(step): global_classes(step), each repeated batch_k times. Lets a
  // replica know the labels of the whole global batch (for negatives on other replicas) without communication.
  std::vector<int64_t> global_labels(uint64_t step) const;
  // Positions [r*B, (r+1)*B) of global_batch(step); 0 <= replica < R.
  std::vector<int64_t> replica_rows(uint64_t step, int64_t replica) const;

  const BatchPlanOptions& options() const { return options_; }
  int64_t num_rows() const { return num_rows_; }
  int64_t num_nonempty_classes() const { return static_cast<int64_t>(nonempty_classes_.size()); }

 private:
  BatchPlanOptions options_;
  int64_t num_rows_ = 0;
  std::vector<int64_t> nonempty_classes_;            // ascending class ids with >= 1 image
  std::vector<std::vector<int64_t>> rows_of_class_;  // [num_classes] ascending rows
  std::vector<std::vector<int64_t>> classes_of_shard_;  // shard_groups > 0: [S] non-empty visible classes

  std::vector<int64_t> stratified_classes(uint64_t step) const;
};

}  // namespace dml
