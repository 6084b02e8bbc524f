#pragma once
// Margin loss with a learned per-class boundary beta (Wu et al. 2017), with the semantics of the
// reference MXNet Gluon example (example/gluon/embedding_learning in Apache MXNet).
//
// For triplets t = (a, p, n) and beta_t = beta[label[a]] (the ANCHOR's class, for both terms):
//   d_ap = sqrt(|x_p - x_a|^2 + 1e-8),  d_an = sqrt(|x_n - x_a|^2 + 1e-8)
//   pos_t = max(d_ap - beta_t + margin, 0),  neg_t = max(beta_t - d_an + margin, 0)
//   L = (sum pos + sum neg + nu * sum_t beta_t) / count,  count = number of strictly positive hinge terms
//       (pos and neg counted separately, over the GLOBAL batch); L = sum pos + sum neg (== 0) when count == 0.
// With learn_beta == false (--lr-beta <= 0) beta is the fixed scalar beta_init and there is no regulariser.
//
// Call order per step: terms() on this replica's triplets -> all-reduce (SUM) active_count across
// replicas -> normalise() -> backward. With one replica, pass terms.active_count itself.
#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "dml/loss/distance_weighted_sampling.h"

namespace dml {

struct MarginLossOptions {
  double margin = 0.2;      // --margin (alpha)
  double beta_init = 1.2;   // --beta
  double nu = 0.0;          // --nu, weight of the beta regulariser
  int64_t num_classes = 100;  // training classes; labels index beta and must lie in [0, num_classes)
  bool learn_beta = true;   // learn_beta = (--lr-beta > 0)
};

// The rule that needs no data: margin >= 0. Throws OptionError("margin").
void validate_margin_loss(const MarginLossOptions& options);

class MarginLossImpl : public torch::nn::Module {
 public:
  explicit MarginLossImpl(const MarginLossOptions& options);

  struct Terms {
    torch::Tensor hinge_sum;     // scalar: sum of pos + neg hinge terms of these triplets (differentiable)
    torch::Tensor beta_reg;      // scalar: nu * sum_t beta[y_a_t] (differentiable w.r.t. beta); 0 when fixed beta
    torch::Tensor active_count;  // scalar: number of strictly positive hinge terms (no grad)
  };

  // embeddings: floating [N, D] on any device (the gathered batch; gradient flows to it). labels: int64 [N]
  // on the same device, values in [0, num_classes) (not checked: that would need a host sync).
  // triplets: from sample_triplets (indices into embeddings), same device.
  // Math and results are float32 for float32/float16/bfloat16 embeddings, float64 for float64 embeddings
  // (used by the finite-difference tests; move the module with ->to(torch::kFloat64) then). The module
  // must be on the embeddings' device. No host synchronisation.
  Terms terms(const torch::Tensor& embeddings, const torch::Tensor& labels, const Triplets& triplets);

  // (hinge_sum + beta_reg) / global_active_count when the count > 0, else hinge_sum (== 0; the regulariser is
  // dropped). global_active_count: scalar, the SUM of active_count over replicas. No host sync, and the
  // gradient is finite (zero) when the count is 0.
  static torch::Tensor normalise(const Terms& local_terms, const torch::Tensor& global_active_count);

  // [num_classes] parameter "beta" when learn_beta; else a 0-d float32 CPU tensor holding beta_init (no grad).
  torch::Tensor beta();

  const MarginLossOptions& options() const { return options_; }

 private:
  MarginLossOptions options_;
  torch::Tensor beta_;  // registered parameter when learn_beta, undefined otherwise
};

TORCH_MODULE(MarginLoss);

}  // namespace dml
