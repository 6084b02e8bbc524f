#include "dml/loss/distance_weighted_sampling.h"

#include <torch/torch.h>

#include "dml/util/counter_rng.h"
#include "dml/util/error.h"

namespace dml {
namespace {

// Upper clip of D inside the logs: keeps 1 - D^2/4 > 0 for antipodal pairs (D = 2) and rounding
// overshoot (D^2 slightly above 4). Only matters for entries that are masked anyway unless the user
// sets nonzero_loss_cutoff >= 2.
constexpr double kMaxDistance = 2.0 - 1e-4;

void check_inputs(const torch::Tensor& candidates, const torch::Tensor& labels, int64_t anchor_begin,
                  int64_t anchor_count, const SamplingOptions& options) {
  const char* where = "distance-weighted sampling: ";
  check(candidates.defined() && candidates.dim() == 2 && candidates.is_floating_point(), where,
        "candidates must be a floating [N, D] tensor, got ",
        candidates.defined() ? candidates.sizes() : torch::IntArrayRef{}, "; pass the gathered embeddings");
  const int64_t n = candidates.size(0);
  check(labels.defined() && labels.dim() == 1 && labels.size(0) == n && labels.scalar_type() == torch::kInt64,
        where, "labels must be int64 [N] with N = ", n, " (the candidates' rows)");
  check(labels.device() == candidates.device(), where, "labels are on ", labels.device(),
        " but candidates on ", candidates.device(), "; move them to one device");
  validate_sampling(options);
  const int64_t k = options.blocks.batch_k;
  check(anchor_begin >= 0 && anchor_count >= 0 && anchor_begin + anchor_count <= n, where, "anchor rows [",
        anchor_begin, ", ", anchor_begin + anchor_count, ") are outside the ", n, " candidates");
  check(anchor_begin % k == 0 && anchor_count % k == 0, where, "anchor rows [", anchor_begin, ", +", anchor_count,
        ") must start and end on class blocks of batch_k = ", k);
  if (labels.device().is_cpu()) {
    const torch::Tensor host = labels.contiguous();
    check_class_block_labels(host.data_ptr<int64_t>(), n, options.blocks, "distance-weighted sampling");
  }
}

}  // namespace

void validate_sampling(const SamplingOptions& options) {
  validate_class_blocks(options.blocks);
  check_option(options.cutoff > 0.0 && options.cutoff < kMaxDistance, "cutoff", "distance-weighted sampling: cutoff is ",
               options.cutoff, "; it must lie in (0, 2)");
  check_option(options.nonzero_loss_cutoff > options.cutoff, "nonzero_loss_cutoff",
               "distance-weighted sampling: nonzero_loss_cutoff is ", options.nonzero_loss_cutoff,
               "; it must exceed the lower cutoff ", options.cutoff, " (no negative could be drawn otherwise)");
}

torch::Tensor negative_weights(const torch::Tensor& candidates, const torch::Tensor& labels, int64_t anchor_begin,
                               int64_t anchor_count, const SamplingOptions& options) {
  check_inputs(candidates, labels, anchor_begin, anchor_count, options);
  torch::NoGradGuard no_grad;
  // The weights span ~1e40 in 128-d: always float32, whatever the embeddings' precision.
  const auto compute_type = torch::kFloat32;
  const torch::Tensor x = candidates.detach().to(compute_type);
  const int64_t n = x.size(0);
  if (anchor_count == 0) return torch::zeros({0, n}, x.options());
  const double dim = static_cast<double>(x.size(1));
  const torch::Tensor anchors = x.narrow(0, anchor_begin, anchor_count);

  // Squared distances by the expansion (as the reference), clamped at 0 against rounding.
  const torch::Tensor sq_norm = x.square().sum(1);
  const torch::Tensor d2 = (sq_norm.narrow(0, anchor_begin, anchor_count).unsqueeze(1) + sq_norm.unsqueeze(0) -
                            2.0 * torch::mm(anchors, x.t()))
                               .clamp_min(0.0);
  const torch::Tensor distance = d2.sqrt().clamp_min(options.cutoff);  // [A, N]

  // log(1 - D^2/4) = log1p(-D/2) + log1p(D/2): accurate near D = 2, finite after the upper clip.
  const torch::Tensor half_d = distance.clamp_max(kMaxDistance) * 0.5;
  const torch::Tensor log_w = (2.0 - dim) * torch::log(half_d * 2.0) -
                              ((dim - 3.0) / 2.0) * (torch::log1p(-half_d) + torch::log1p(half_d));

  const torch::Tensor anchor_labels = labels.narrow(0, anchor_begin, anchor_count).unsqueeze(1);
  const torch::Tensor other_class = labels.unsqueeze(0).ne(anchor_labels);  // [A, N]
  const torch::Tensor admissible = other_class.logical_and(distance.lt(options.nonzero_loss_cutoff));

  // Per-row max over admissible entries; rows without any use 0 (their weights are replaced below).
  const double neg_inf = -std::numeric_limits<double>::infinity();
  const torch::Tensor masked_log_w = log_w.masked_fill(admissible.logical_not(), neg_inf);
  const torch::Tensor has_admissible = admissible.any(1, /*keepdim=*/true);
  const torch::Tensor row_max =
      torch::where(has_admissible, std::get<0>(masked_log_w.max(1, /*keepdim=*/true)), torch::zeros_like(log_w.narrow(1, 0, 1)));
  torch::Tensor weights = (masked_log_w - row_max).exp();  // exp(-inf) = 0 off the admissible set
  weights = weights / weights.sum(1, /*keepdim=*/true).clamp_min(std::numeric_limits<float>::min());

  // Fallbacks: uniform over other-class rows; uniform over all rows but the anchor in a single-class batch.
  const torch::Tensor not_self =
      torch::arange(n, labels.options()).unsqueeze(0).ne(torch::arange(anchor_begin, anchor_begin + anchor_count,
                                                                        labels.options()).unsqueeze(1));
  const torch::Tensor has_other = other_class.any(1, /*keepdim=*/true);
  const torch::Tensor fallback_mask = torch::where(has_other, other_class, not_self).to(compute_type);
  const torch::Tensor uniform = fallback_mask / fallback_mask.sum(1, /*keepdim=*/true).clamp_min(1.0);
  return torch::where(has_admissible, weights, uniform);
}

Triplets sample_triplets(const torch::Tensor& candidates, const torch::Tensor& labels, int64_t anchor_begin,
                         int64_t anchor_count, const SamplingOptions& options, uint64_t seed, uint64_t step) {
  const torch::Tensor probs = negative_weights(candidates, labels, anchor_begin, anchor_count, options);  // [A, N]
  torch::NoGradGuard no_grad;
  const int64_t k = options.blocks.batch_k, draws = k - 1, n = probs.size(1);
  const auto index_opts = labels.options().dtype(torch::kInt64);
  if (anchor_count == 0) {
    const torch::Tensor none = torch::zeros({0}, index_opts);
    return Triplets{none, none.clone(), none.clone()};
  }

  const torch::Tensor anchor_rows = torch::arange(anchor_begin, anchor_begin + anchor_count, index_opts);  // [A]
  // Positives: the t-th positive of anchor i is row block_start + t, skipping i itself.
  const torch::Tensor offsets = torch::arange(draws, index_opts).unsqueeze(0);               // [1, k-1]
  const torch::Tensor in_block = torch::remainder(anchor_rows, k).unsqueeze(1);             // [A, 1]
  const torch::Tensor positive = (anchor_rows.unsqueeze(1) - in_block) + offsets + offsets.ge(in_block).to(torch::kInt64);

  // Inverse-CDF draws. u is scaled by the row total so rounding in the cumsum cannot push it past the
  // end; the result is capped at the row's last positive-probability column, so a zero-probability row
  // (same class, or D >= cutoff) can never be drawn.
  const torch::Tensor cdf = probs.cumsum(1);                                                  // [A, N]
  const torch::Tensor u = random_uniform_range(RngKey{seed, RngStream::kNegatives, step}, anchor_begin, anchor_count,
                                               draws, probs.device())
                              .to(cdf.scalar_type());                                         // [A, k-1]
  const torch::Tensor target = u * cdf.narrow(1, n - 1, 1);
  const torch::Tensor columns = torch::arange(n, index_opts).unsqueeze(0);
  const torch::Tensor last_positive =
      std::get<0>(torch::where(probs.gt(0.0), columns, torch::zeros_like(columns)).max(1, /*keepdim=*/true));
  const torch::Tensor negative = torch::minimum(torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true),
                                                last_positive);

  Triplets triplets;
  triplets.anchor = anchor_rows.unsqueeze(1).expand({anchor_count, draws}).reshape({-1});
  triplets.positive = positive.reshape({-1});
  triplets.negative = negative.reshape({-1});
  return triplets;
}

}  // namespace dml
