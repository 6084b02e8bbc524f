#pragma once
// The exact global objective of one step (what makes R replicas of batch B train like one of R*B):
// gather every replica's embeddings in rank-major order with a differentiable all-gather, sample
// triplets for this rank's anchors against the whole global batch, sum this rank's loss terms and
// divide by the GLOBAL number of active hinge terms. Summing the gradients of every rank's loss then
// equals the gradient of the one-replica loss on the whole batch.
#include <torch/torch.h>

#include "dml/dist/communicator.h"
#include "dml/loss/distance_weighted_sampling.h"
#include "dml/loss/margin_loss.h"
#include "dml/util/phase_timer.h"

namespace dml {

struct ObjectiveResult {
  torch::Tensor loss;          // float32 scalar: this rank's share of the global loss (differentiable)
  torch::Tensor active_count;  // float32 scalar: global active hinge terms (no grad)
};

class DistributedObjective {
 public:
  DistributedObjective(Communicator& comm, MarginLoss loss, SamplingOptions sampling, uint64_t seed);

  // local_embeddings: float32 [Bl, D] of this rank's replicas concatenated in replica order, on the
  // communicator's device. global_labels: [W*Bl] host labels of the whole global batch in rank-major
  // order (every rank knows them from the global sampler, so they need no communication); they are
  // checked against the class-block layout here, on the host, then copied to the device. Every rank
  // has the same Bl. Collectives (lock-step): all_gather, all_reduce.
  // `timer` (optional) gets the phases "gather" and "sampling_loss".
  ObjectiveResult compute(const torch::Tensor& local_embeddings, const std::vector<int64_t>& global_labels, uint64_t step,
                          PhaseTimer* timer = nullptr);

 private:
  Communicator& comm_;
  MarginLoss loss_;
  SamplingOptions sampling_;
  uint64_t seed_;
};

}  // namespace dml
