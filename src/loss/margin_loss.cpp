#include "dml/loss/margin_loss.h"

#include <torch/torch.h>

#include "dml/util/error.h"

namespace dml {
namespace {

// The reference puts the epsilon inside the sqrt so a zero distance has a finite gradient (zero).
constexpr double kDistanceEpsilon = 1e-8;

torch::Tensor pair_distance(const torch::Tensor& a, const torch::Tensor& b) {
  return ((b - a).square().sum(1) + kDistanceEpsilon).sqrt();
}

}  // namespace

void validate_margin_loss(const MarginLossOptions& options) {
  check_option(options.margin >= 0.0, "margin", "margin loss: margin is ", options.margin, "; it must be >= 0");
}

MarginLossImpl::MarginLossImpl(const MarginLossOptions& options) : options_(options) {
  check(options.num_classes > 0, "margin loss: num_classes is ", options.num_classes,
        "; it must be the number of training classes (> 0)");
  validate_margin_loss(options);
  if (options.learn_beta) {
    beta_ = register_parameter("beta", torch::full({options.num_classes}, options.beta_init, torch::kFloat32));
  }
}

torch::Tensor MarginLossImpl::beta() {
  if (options_.learn_beta) return beta_;
  return torch::scalar_tensor(options_.beta_init, torch::kFloat32);
}

MarginLossImpl::Terms MarginLossImpl::terms(const torch::Tensor& embeddings, const torch::Tensor& labels,
                                            const Triplets& triplets) {
  check(embeddings.defined() && embeddings.dim() == 2 && embeddings.is_floating_point(),
        "margin loss: embeddings must be a floating [N, D] tensor");
  check(labels.defined() && labels.dim() == 1 && labels.size(0) == embeddings.size(0) &&
            labels.scalar_type() == torch::kInt64,
        "margin loss: labels must be int64 [N] with N = ", embeddings.size(0));
  check(triplets.anchor.defined() && triplets.positive.defined() && triplets.negative.defined() &&
            triplets.anchor.dim() == 1 && triplets.positive.sizes() == triplets.anchor.sizes() &&
            triplets.negative.sizes() == triplets.anchor.sizes(),
        "margin loss: triplets must be three int64 [T] index tensors (from sample_triplets)");

  const auto compute_type = embeddings.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const torch::Tensor x = embeddings.to(compute_type);  // differentiable cast (no-op for float32)
  const torch::Tensor x_a = x.index_select(0, triplets.anchor);
  const torch::Tensor d_ap = pair_distance(x_a, x.index_select(0, triplets.positive));
  const torch::Tensor d_an = pair_distance(x_a, x.index_select(0, triplets.negative));

  Terms out;
  torch::Tensor beta_t;  // [T] or a scalar
  if (options_.learn_beta) {
    beta_t = beta_.index_select(0, labels.index_select(0, triplets.anchor)).to(compute_type);
    out.beta_reg = options_.nu * beta_t.sum();
  } else {
    beta_t = torch::scalar_tensor(options_.beta_init, x.options().requires_grad(false));
    out.beta_reg = torch::zeros({}, x.options().requires_grad(false));
  }
  const torch::Tensor pos = (d_ap - beta_t + options_.margin).clamp_min(0.0);
  const torch::Tensor neg = (beta_t - d_an + options_.margin).clamp_min(0.0);
  out.hinge_sum = pos.sum() + neg.sum();
  {
    torch::NoGradGuard no_grad;
    out.active_count = (pos.gt(0.0).sum() + neg.gt(0.0).sum()).to(compute_type);
  }
  return out;
}

torch::Tensor MarginLossImpl::normalise(const Terms& local_terms, const torch::Tensor& global_active_count) {
  const torch::Tensor count =
      global_active_count.to(local_terms.hinge_sum.device(), local_terms.hinge_sum.scalar_type()).detach();
  const torch::Tensor active = count.gt(0.0);
  // clamp_min(1) keeps the unused branch finite, so where() back-propagates 0, not NaN, at count == 0.
  const torch::Tensor normalised = (local_terms.hinge_sum + local_terms.beta_reg) / count.clamp_min(1.0);
  return torch::where(active, normalised, local_terms.hinge_sum);
}

}  // namespace dml
