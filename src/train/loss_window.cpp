#include "train/loss_window.h"

#include <cmath>
#include <utility>

#include "dml/dist/scalar_collectives.h"
#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml {

LossWindow::LossWindow(Communicator& comm, torch::Device device, int64_t capacity, bool skip_nonfinite,
                       std::string where)
    : comm_(comm), skip_(skip_nonfinite), where_(std::move(where)) {
  check(capacity > 0, "LossWindow: capacity ", capacity, " must be positive");
  slots_ = torch::zeros({capacity, 2}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
}

bool LossWindow::record(int64_t step, const torch::Tensor& loss_share, const torch::Tensor& finite) {
  if (used_ == slots_.size(0)) flush();  // more steps than the log interval between two flushes
  if (used_ == 0) first_step_ = step;
  check(step == first_step_ + used_, "LossWindow: step ", step, " recorded after step ", first_step_ + used_ - 1);
  torch::NoGradGuard no_grad;
  const torch::Tensor row = torch::stack({loss_share.detach().to(torch::kFloat64).reshape({}),
                                          finite.logical_not().to(torch::kFloat64).reshape({})});
  slots_[used_].copy_(row);
  ++used_;
  if (!skip_) return false;
  const bool skip = any_rank(comm_, !finite.item<bool>());
  if (skip) {
    log::warn("train", str("step ", step, ": the loss or the gradients are not finite (NaN or inf); skipped "
                           "(--skip-nonfinite), the weights and optimiser state are unchanged"));
  }
  return skip;
}

void LossWindow::flush() {
  if (used_ == 0) return;
  torch::Tensor sums = slots_.narrow(0, 0, used_).clone();
  comm_.all_reduce_sum(sums);
  const torch::Tensor host = sums.cpu();
  const auto table = host.accessor<double, 2>();
  for (int64_t i = 0; i < used_; ++i) {
    const int64_t step = first_step_ + i;
    const double loss = table[i][0];
    const bool bad = table[i][1] > 0 || !std::isfinite(loss);
    ++pending_.steps;
    if (bad) {
      if (skip_) {
        ++pending_.skipped;
        ++skipped_total_;
        continue;
      }
      used_ = 0;
      if (comm_.rank() != 0) {
        comm_.barrier();  // rank 0 reports and ends the job; it never joins this barrier
      }
      throw Error(str("step ", step, ": the loss or the gradients are not finite (NaN or inf); the last finite loss ",
                      last_finite_step_ < 0 ? std::string("was never reached (it was the first step)")
                                            : str("was ", last_finite_loss_, " at step ", last_finite_step_),
                      ". Stopped before the weights were saved: ", where_,
                      ". Lower the learning rate (--lr), or pass --skip-nonfinite to skip such steps"));
    }
    pending_loss_sum_ += loss;
    last_finite_loss_ = loss;
    last_finite_step_ = step;
  }
  used_ = 0;
}

LossWindowSummary LossWindow::take() {
  flush();
  LossWindowSummary s = pending_;
  const int64_t finite_steps = s.steps - s.skipped;
  s.loss = finite_steps > 0 ? pending_loss_sum_ / static_cast<double>(finite_steps) : std::nan("");
  pending_ = LossWindowSummary{};
  pending_loss_sum_ = 0;
  return s;
}

}  // namespace dml
