#pragma once
// Distance-weighted negative sampling ("Sampling Matters in Deep Embedding Learning", Wu et al. 2017,
// as the reference MXNet Gluon example, example/gluon/embedding_learning in Apache MXNet, does it),
// for one replica's anchors against the whole gathered global batch.
//
// Sampling distribution of anchor i over candidates j (embedding dim d, all in float32, no autograd):
//   D_ij  = sqrt(max(|x_i|^2 + |x_j|^2 - 2 x_i.x_j, 0)), then D_ij = max(D_ij, cutoff)
//   log w = (2 - d) log D - ((d - 3) / 2) log(1 - D^2 / 4)      (D clipped at 2 - 1e-4 inside the logs)
//   admissible j: label_j != label_i and D_ij < nonzero_loss_cutoff
//   p_ij  = exp(log w_ij - max_admissible_j log w_ij) / sum, over admissible j (0 elsewhere).
// The max is taken per row over admissible entries (the reference takes one global max before masking,
// which underflows in 128-d); the normalised distribution is the reference's ideal one.
// Fallbacks, per anchor row (no host synchronisation decides them):
//   1. no admissible candidate (every other-class row has D >= nonzero_loss_cutoff): uniform over the
//      rows with a different label (the reference's final behaviour);
//   2. no row with a different label at all (a single-class global batch): uniform over every row except
//      the anchor itself. Such "negatives" share the anchor's class; the trainer should reject
//      configurations whose global batch holds one class (global batch == batch_k). Documented, tested.
//
// Positives come from class blocks, not from labels. The sampler lays a batch out in blocks of batch_k
// rows of one class (ClassBlocks), and the positives of an anchor are the other batch_k - 1 rows of its
// own block: exactly batch_k - 1 triplets per anchor, as the reference's 4 per anchor and 280 per
// 70-image replica, with static shapes and no host synchronisation. When the global batch needs more
// classes than the training split has, a class recurs on another replica with other images; those rows
// are neither positives (another block) nor negatives (same label: masks come from labels). Taking them
// as positives would give anchors of recurring classes more triplets than the others and make the
// triplet count depend on the data, for little gain: recurrences only happen when replicas * classes
// per replica exceeds the training classes, and then only for a few classes.
#include <cstdint>

#include <ATen/core/Tensor.h>

#include "dml/util/class_blocks.h"

namespace dml {

struct SamplingOptions {
  ClassBlocks blocks;                 // the batch layout: positives are the other rows of an anchor's block
  double cutoff = 0.5;                // lower clip of D before the weights
  double nonzero_loss_cutoff = 1.4;   // only negatives with D < this are drawn (unless fallback)
};

// The rules that need no data: the block layout (validate_class_blocks), 0 < cutoff < nonzero_loss_cutoff,
// cutoff < 2. Throws OptionError naming the field ("batch_k", "cutoff", "nonzero_loss_cutoff").
void validate_sampling(const SamplingOptions& options);

// All int64 [T] on the candidates' device; indices into `candidates` (global batch rows).
// T = anchor_count * (batch_k - 1), ordered anchor-major, then the anchor's positives in row order.
struct Triplets {
  at::Tensor anchor, positive, negative;
};

// candidates: float (float32/float64/float16/bfloat16) [N, D] L2-normalised embeddings of the whole
//   gathered global batch, rank-major, in class blocks of batch_k consecutive rows (N % batch_k == 0).
//   Not differentiated through (read under NoGradGuard).
// labels: int64 [N] on the same device (masks come from labels; positives from block positions). Labels
//   on the CPU are checked against the block layout (check_class_block_labels: every block one label);
//   callers with labels on a GPU check their host copy first (the check would need a host sync there).
// anchors: candidates[anchor_begin, anchor_begin + anchor_count); both multiples of batch_k.
// Positives of anchor i: the other batch_k - 1 rows of its block. One negative per (anchor, positive),
//   drawn with replacement by inverse-CDF sampling of the anchor's row of negative_weights with
//   u = random_uniform_tensor(RngKey{seed, RngStream::kNegatives, step}, global anchor index, batch_k - 1)[., t],
//   so the same global batch gives the same triplets however its anchors are split across replicas.
// Fully vectorised on the tensors' device: no host sync, no host loop over anchors.
// Throws dml::Error on shape/option violations (checked on host-side metadata only).
Triplets sample_triplets(const at::Tensor& candidates, const at::Tensor& labels, int64_t anchor_begin,
                         int64_t anchor_count, const SamplingOptions& options, uint64_t seed, uint64_t step);

// The normalised sampling distribution the draws follow: float32 [anchor_count, N] on the candidates'
// device, rows summing to 1 (fallback rows included). For tests and diagnostics.
at::Tensor negative_weights(const at::Tensor& candidates, const at::Tensor& labels, int64_t anchor_begin,
                            int64_t anchor_count, const SamplingOptions& options);

}  // namespace dml
