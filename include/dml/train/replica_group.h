#pragma once
// The model replicas of one rank: one EmbeddingNet per device (GPUs of --gpus, or --cpu-replicas
// copies on the CPU). Replica 0 is the primary: the optimiser updates it, collectives run on its
// gradients, and the others copy its parameters after every step.
//
// Call order per step: forward(j, x) for every replica -> backward of the loss ->
// reduce_gradients_to_primary() -> (cross-rank gradient sync, optimiser step on primary()) ->
// copy_primary_to_replicas().
#include <torch/torch.h>

#include <vector>

#include "dml/model/embedding_net.h"

namespace dml {

class ReplicaGroup {
 public:
  // Builds one net per device with the same seed (identical initial weights).
  ReplicaGroup(const ModelOptions& options, bool freeze_bn, uint64_t seed, const std::vector<torch::Device>& devices);

  int64_t size() const { return static_cast<int64_t>(nets_.size()); }
  EmbeddingNet& primary() { return nets_.front(); }
  EmbeddingNet& replica(int64_t j) { return nets_.at(j); }
  const torch::Device& device(int64_t j) const { return devices_.at(j); }

  void train(bool on);
  // Sums every replica's parameter gradients into the primary's (undefined grads count as zero).
  void reduce_gradients_to_primary();
  // Copies the primary's parameters and buffers into the other replicas.
  void copy_primary_to_replicas();

 private:
  std::vector<EmbeddingNet> nets_;
  std::vector<torch::Device> devices_;
};

}  // namespace dml
