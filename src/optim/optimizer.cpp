#include "dml/optim/optimizer.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "dml/util/error.h"
#include "optim/adam_kernel.h"

namespace dml {

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "adam") return OptimizerKind::kAdam;
  if (name == "sgd") return OptimizerKind::kSgd;
  if (name == "adamw") return OptimizerKind::kAdamW;
  if (name == "rmsprop") return OptimizerKind::kRmsProp;
  throw OptionError("kind", str("unknown optimizer '", name, "'; use one of adam, sgd, adamw, rmsprop"));
}

std::string optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kAdam: return "adam";
    case OptimizerKind::kSgd: return "sgd";
    case OptimizerKind::kAdamW: return "adamw";
    case OptimizerKind::kRmsProp: return "rmsprop";
  }
  throw Error("optimizer_name: invalid OptimizerKind value");
}

void validate_optimizer(const OptimizerOptions& o) {
  check_option(o.lr >= 0, "lr", "optimizer: lr is ", o.lr, "; use a learning rate >= 0");
  check_option(o.weight_decay >= 0, "weight_decay", "optimizer: weight_decay is ", o.weight_decay, "; use a value >= 0");
  check_option(o.rescale_grad > 0, "rescale_grad", "optimizer: rescale_grad is ", o.rescale_grad,
               "; pass 1 / global batch size (> 0)");
  check_option(o.beta1 >= 0 && o.beta1 < 1, "beta1", "optimizer: beta1 is ", o.beta1, "; use a value in [0, 1)");
  check_option(o.beta2 >= 0 && o.beta2 < 1, "beta2", "optimizer: beta2 is ", o.beta2, "; use a value in [0, 1)");
  check_option(o.epsilon > 0, "epsilon", "optimizer: epsilon is ", o.epsilon, "; use a value > 0 (reference 1e-7)");
  check_option(o.momentum >= 0 && o.momentum < 1, "momentum", "optimizer: momentum is ", o.momentum,
               "; use a value in [0, 1)");
  check_option(o.rmsprop_gamma >= 0 && o.rmsprop_gamma < 1, "rmsprop_gamma", "optimizer: rmsprop_gamma is ",
               o.rmsprop_gamma, "; use a value in [0, 1)");
  check_option(o.rmsprop_epsilon > 0, "rmsprop_epsilon", "optimizer: rmsprop_epsilon is ", o.rmsprop_epsilon,
               "; use a value > 0");
}

Optimizer::Optimizer(std::vector<OptimizerParamGroup> groups, const OptimizerOptions& options)
    : groups_(std::move(groups)), options_(options) {
  validate_optimizer(options_);
  for (const auto& group : groups_) {
    check(group.lr_mult >= 0, "optimizer: group '", group.name, "' has lr_mult ", group.lr_mult,
          "; use lr_mult >= 0");
    for (size_t i = 0; i < group.params.size(); ++i) {
      check(group.params[i].defined(), "optimizer: group '", group.name, "' parameter ", i,
            " is an undefined tensor; pass the module's parameters");
      check(group.params[i].is_floating_point(), "optimizer: group '", group.name, "' parameter ", i,
            " has dtype ", group.params[i].scalar_type(), "; only floating-point parameters can be trained");
    }
    states_.emplace_back(group.params.size());
  }
}

void Optimizer::set_lr(double lr) {
  check(lr >= 0, "optimizer: set_lr(", lr, "); use a learning rate >= 0");
  options_.lr = lr;
}

void Optimizer::step() {
  torch::NoGradGuard no_grad;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const double group_lr = options_.lr * groups_[g].lr_mult;
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const torch::Tensor& param = groups_[g].params[i];
      const torch::Tensor& grad = param.grad();
      if (!grad.defined()) continue;
      check(grad.sizes() == param.sizes(), "optimizer: group '", groups_[g].name, "' parameter ", i,
            " has shape ", param.sizes(), " but its gradient has shape ", grad.sizes());
      update(param, grad, states_[g][i], group_lr);
      num_updates_ = std::max(num_updates_, states_[g][i].count);
    }
  }
}

void Optimizer::zero_grad() {
  torch::NoGradGuard no_grad;
  for (auto& group : groups_) {
    for (auto& param : group.params) {
      if (param.grad().defined()) param.mutable_grad().zero_();
    }
  }
}

namespace {

// Adam and AdamW in one pass over memory on the CPU: each element's gradient, moments and weight
// are read once and written once, where the tensor-op version makes nine passes and two temporary
// tensors (the optimiser step was an eighth of a bf16 resnet18 step). Same arithmetic, in the same
// order, as the tensor ops of Optimizer::update.
// float32 (the training case): the vectorised loop of adam_kernel.cpp; float64 (tests, reference
// checks): the same arithmetic here.
template <typename T>
void adam_chunk_generic(T* param, const T* grad, T* m, T* v, int64_t begin, int64_t end, const OptimizerOptions& o,
                        bool decoupled, double lr, double lr_t) {
  const T rescale = static_cast<T>(o.rescale_grad), wd = static_cast<T>(o.weight_decay);
  const T b1 = static_cast<T>(o.beta1), b2 = static_cast<T>(o.beta2);
  const T c1 = static_cast<T>(1.0 - o.beta1), c2 = static_cast<T>(1.0 - o.beta2), eps = static_cast<T>(o.epsilon);
  const T step = static_cast<T>(lr_t), decay = static_cast<T>(lr * o.weight_decay);
  for (int64_t i = begin; i < end; ++i) {
    T g = grad[i] * rescale;
    if (!decoupled) g = g + wd * param[i];
    const T mi = m[i] * b1 + c1 * g;
    const T vi = v[i] * b2 + c2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    const T denom = std::sqrt(vi) + eps;
    param[i] = decoupled ? param[i] - ((mi / denom) * step + decay * param[i]) : param[i] + (-step) * (mi / denom);
  }
}

void fused_adam_cpu(const torch::Tensor& param, const torch::Tensor& grad, const torch::Tensor& m,
                    const torch::Tensor& v, const OptimizerOptions& o, bool decoupled, double lr, double lr_t) {
  const int64_t n = param.numel();
  if (param.scalar_type() == torch::kFloat32) {
    const optim_kernels::AdamScalars s{static_cast<float>(o.rescale_grad), static_cast<float>(o.weight_decay),
                                       static_cast<float>(o.beta1), static_cast<float>(o.beta2),
                                       static_cast<float>(1.0 - o.beta1), static_cast<float>(1.0 - o.beta2),
                                       static_cast<float>(o.epsilon), static_cast<float>(lr_t),
                                       static_cast<float>(lr * o.weight_decay), decoupled};
    float *p = param.data_ptr<float>(), *mp = m.data_ptr<float>(), *vp = v.data_ptr<float>();
    const float* gp = grad.data_ptr<float>();
    at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) { optim_kernels::adam_chunk(p, gp, mp, vp, begin, end, s); });
    return;
  }
  double *p = param.data_ptr<double>(), *mp = m.data_ptr<double>(), *vp = v.data_ptr<double>();
  const double* gp = grad.data_ptr<double>();
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    adam_chunk_generic(p, gp, mp, vp, begin, end, o, decoupled, lr, lr_t);
  });
}

// The fused loop needs the four tensors on the CPU with one dtype and the same dense layout
// (channels-last parameters qualify: their gradient and moments share their strides).
bool fusable(const torch::Tensor& param, const torch::Tensor& grad, const torch::Tensor& m, const torch::Tensor& v) {
  if (!param.device().is_cpu() || !grad.device().is_cpu()) return false;
  const auto dtype = param.scalar_type();
  if (dtype != torch::kFloat32 && dtype != torch::kFloat64) return false;
  for (const torch::Tensor* t : {&grad, &m, &v}) {
    if (t->scalar_type() != dtype || t->strides() != param.strides()) return false;
  }
  return param.is_non_overlapping_and_dense();
}

}  // namespace

void Optimizer::update(const torch::Tensor& param, const torch::Tensor& grad, ParamState& state, double lr) {
  const OptimizerOptions& o = options_;
  const OptimizerKind kind = o.kind;
  if ((kind == OptimizerKind::kAdam || kind == OptimizerKind::kAdamW) && param.device().is_cpu()) {
    if (!state.first.defined()) {
      state.first = torch::zeros_like(param);
      state.second = torch::zeros_like(param);
    }
    if (fusable(param, grad, state.first, state.second)) {
      state.count += 1;
      const double t = static_cast<double>(state.count);
      const double lr_t = lr * std::sqrt(1.0 - std::pow(o.beta2, t)) / (1.0 - std::pow(o.beta1, t));
      const bool decoupled = kind == OptimizerKind::kAdamW;
      fused_adam_cpu(param, grad, state.first, state.second, o, decoupled, lr, lr_t);
      return;
    }
  }
  // g' = rescale * g (+ wd * w unless AdamW, whose decay is decoupled).
  torch::Tensor g = grad.mul(o.rescale_grad);
  if (kind != OptimizerKind::kAdamW && o.weight_decay != 0) g.add_(param, o.weight_decay);
  state.count += 1;

  switch (kind) {
    case OptimizerKind::kAdam:
    case OptimizerKind::kAdamW: {
      if (!state.first.defined()) {
        state.first = torch::zeros_like(param);
        state.second = torch::zeros_like(param);
      }
      state.first.mul_(o.beta1).add_(g, 1.0 - o.beta1);
      state.second.mul_(o.beta2).addcmul_(g, g, 1.0 - o.beta2);
      const double t = static_cast<double>(state.count);
      // MXNet folds both bias corrections into the step size and adds eps to the uncorrected
      // sqrt(v); LibTorch adds eps after correcting v, which moves tiny-gradient weights differently.
      const double lr_t = lr * std::sqrt(1.0 - std::pow(o.beta2, t)) / (1.0 - std::pow(o.beta1, t));
      torch::Tensor denom = state.second.sqrt().add_(o.epsilon);
      if (kind == OptimizerKind::kAdam) {
        param.addcdiv_(state.first, denom, -lr_t);
      } else {
        // w = w_old - (lr_t * m / (sqrt(v) + eps) + lr * wd * w_old): the decay reads w before
        // the Adam step touches it.
        torch::Tensor delta = state.first.div(denom).mul_(lr_t);
        if (o.weight_decay != 0) delta.add_(param, lr * o.weight_decay);
        param.sub_(delta);
      }
      break;
    }
    case OptimizerKind::kSgd: {
      if (o.momentum == 0) {
        param.add_(g, -lr);
        break;
      }
      if (!state.first.defined()) state.first = torch::zeros_like(param);
      // The reference keeps lr inside the buffer: a learning-rate drop changes only new
      // contributions, the accumulated velocity keeps its old scale.
      state.first.mul_(o.momentum).add_(g, -lr);
      param.add_(state.first);
      break;
    }
    case OptimizerKind::kRmsProp: {
      if (!state.first.defined()) state.first = torch::zeros_like(param);
      state.first.mul_(o.rmsprop_gamma).addcmul_(g, g, 1.0 - o.rmsprop_gamma);
      // MXNet's non-centred RMSProp puts eps inside the square root.
      param.addcdiv_(g, state.first.add(o.rmsprop_epsilon).sqrt_(), -lr);
      break;
    }
  }
}

}  // namespace dml
