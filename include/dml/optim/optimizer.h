#pragma once
// Optimisers with the reference's (MXNet 1.x) update semantics, written as plain tensor loops.
//
// Why not torch::optim: LibTorch's Adam adds epsilon after bias correction, its weight decay and
// gradient rescaling differ from MXNet's, and its SGD keeps lr outside the momentum buffer. These
// loops follow MXNet's exactly (gradient rescaled by 1/(global batch), then coupled L2 decay on every
// parameter; Adam's epsilon added to the uncorrected sqrt(v); SGD's lr inside the momentum buffer),
// so the reference's hyper-parameters (--wd 1e-4, --lr, --lr-beta) mean the same thing here.
//
// Update rules, per parameter w with gradient g (lr_g = lr() * group.lr_mult, wd = weight_decay,
// r = rescale_grad, t = this parameter's own update count after incrementing):
//   Adam    (coupled decay)   g' = r*g + wd*w
//           m = b1*m + (1-b1)*g';  v = b2*v + (1-b2)*g'^2;  t += 1
//           lr_t = lr_g * sqrt(1 - b2^t) / (1 - b1^t)
//           w -= lr_t * m / (sqrt(v) + eps)             (eps added to the UNcorrected sqrt(v))
//   SGD     (coupled decay)   g' = r*g + wd*w
//           momentum > 0:  mom = momentum*mom - lr_g*g';  w += mom   (lr inside the buffer)
//           momentum == 0: w -= lr_g*g'                               (no buffer)
//   AdamW   (decoupled decay) g' = r*g   (no wd in g')
//           m, v, t, lr_t as Adam; then, in one expression with the PRE-update w_old:
//           w = w_old - (lr_t * m / (sqrt(v) + eps) + lr_g * wd * w_old)
//           (the decay uses lr_g, not the bias-corrected lr_t)
//   RMSProp (MXNet non-centred, coupled decay) g' = r*g + wd*w
//           n = (1-gamma)*g'^2 + gamma*n;  w -= lr_g * g' / sqrt(n + eps_rms)
//
// Parameters may live on any device and have any floating dtype; state tensors are created on
// first use, on the parameter's device and dtype, initialised to zero (as MXNet's create_state).
// Scalars (lr_t etc.) are computed in double on the host; there is no host synchronisation.
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dml {

enum class OptimizerKind { kAdam, kSgd, kAdamW, kRmsProp };

// "adam", "sgd", "adamw", "rmsprop" (exact, lower case); anything else throws dml::Error listing
// the accepted names.
OptimizerKind parse_optimizer(const std::string& name);
// The inverse of parse_optimizer.
std::string optimizer_name(OptimizerKind kind);

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kAdam;
  double lr = 1e-4, weight_decay = 1e-4;
  double rescale_grad = 1.0;                           // MXNet rescale_grad: 1 / global batch size
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;   // Adam/AdamW
  double momentum = 0.9;                               // SGD; 0 = plain SGD
  double rmsprop_gamma = 0.9, rmsprop_epsilon = 1e-8;  // RMSProp (MXNet non-centred)
};

// The rules of the options: lr, weight_decay >= 0; rescale_grad, epsilon, rmsprop_epsilon > 0; beta1,
// beta2, momentum, rmsprop_gamma in [0, 1). Throws OptionError naming the field (e.g. "lr").
void validate_optimizer(const OptimizerOptions& options);

// A named set of parameters trained at lr() * lr_mult (e.g. 0.01 for pretrained convs).
struct OptimizerParamGroup {
  std::string name;
  // Leaf tensors, updated in place: pass the model's own parameters after the model has been moved
  // to its device (a later .to(device) would leave the optimiser holding the old tensors).
  std::vector<torch::Tensor> params;
  double lr_mult = 1.0;
};

class Optimizer {
 public:
  // Throws dml::Error on invalid options (lr < 0, beta outside [0,1), ...), an undefined param,
  // or a negative lr_mult.
  Optimizer(std::vector<OptimizerParamGroup> groups, const OptimizerOptions& options);

  // Base learning rate; each group uses lr * lr_mult. Call at epoch start with scheduled_lr(...).
  void set_lr(double lr);
  double lr() const { return options_.lr; }
  const OptimizerOptions& options() const { return options_; }
  const std::vector<OptimizerParamGroup>& groups() const { return groups_; }

  // One update of every parameter whose .grad() is defined (others are skipped: no state change,
  // their update count t does not advance). Call after the gradients are complete (after
  // backward and the all-reduce), before zero_grad(). Runs under NoGradGuard.
  void step();
  // Sets every defined gradient to zero (keeps the tensors; undefined ones stay undefined).
  void zero_grad();
  // MXNet's num_update: the largest per-parameter update count t (equals the number of step()
  // calls when every parameter had a gradient at every step).
  int64_t num_updates() const { return num_updates_; }

  // Full state for bit-exact resume: lr, num_updates, and per parameter its update count and its
  // state tensors. Keys are "<prefix>/..." ("optim/beta" and "optim/beta/" are the same prefix), so
  // several optimisers share one archive. load()
  // checks the kind and the group/parameter layout (names, counts, shapes) and throws dml::Error
  // naming the key and the fix on mismatch; state tensors are moved to each parameter's device.
  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);

 private:
  struct ParamState {
    int64_t count = 0;    // this parameter's update count t
    torch::Tensor first;  // Adam/AdamW m, SGD momentum, RMSProp n
    torch::Tensor second;  // Adam/AdamW v
  };
  void update(const torch::Tensor& param, const torch::Tensor& grad, ParamState& state, double lr);

  std::vector<OptimizerParamGroup> groups_;
  OptimizerOptions options_;
  std::vector<std::vector<ParamState>> states_;  // [group][param]
  int64_t num_updates_ = 0;
};

}  // namespace dml
