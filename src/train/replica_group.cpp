#include "dml/train/replica_group.h"

#include "dml/util/error.h"

namespace dml {

ReplicaGroup::ReplicaGroup(const ModelOptions& options, bool freeze_bn, uint64_t seed,
                           const std::vector<torch::Device>& devices)
    : devices_(devices) {
  check(!devices.empty(), "ReplicaGroup: no device");
  for (const auto& device : devices) {
    EmbeddingNet net = make_embedding_net(options, seed);
    net->set_batch_norm_frozen(freeze_bn);
    net->to(device);
    nets_.push_back(net);
  }
}

void ReplicaGroup::train(bool on) {
  for (auto& net : nets_) net->train(on);
}

void ReplicaGroup::reduce_gradients_to_primary() {
  if (nets_.size() == 1) return;
  torch::NoGradGuard no_grad;
  auto primary_params = nets_[0]->parameters();
  for (size_t j = 1; j < nets_.size(); ++j) {
    auto params = nets_[j]->parameters();
    for (size_t p = 0; p < params.size(); ++p) {
      if (!params[p].grad().defined()) continue;
      auto& target = primary_params[p].mutable_grad();
      if (!target.defined()) {
        target = params[p].grad().to(devices_[0]).clone();
      } else {
        target.add_(params[p].grad().to(devices_[0]));
      }
      params[p].mutable_grad().zero_();
    }
  }
}

void ReplicaGroup::copy_primary_to_replicas() {
  if (nets_.size() == 1) return;
  torch::NoGradGuard no_grad;
  auto src_params = nets_[0]->parameters();
  auto src_buffers = nets_[0]->buffers();
  for (size_t j = 1; j < nets_.size(); ++j) {
    auto params = nets_[j]->parameters();
    for (size_t p = 0; p < params.size(); ++p) params[p].copy_(src_params[p]);
    auto buffers = nets_[j]->buffers();
    for (size_t b = 0; b < buffers.size(); ++b) buffers[b].copy_(src_buffers[b]);
  }
}

}  // namespace dml
