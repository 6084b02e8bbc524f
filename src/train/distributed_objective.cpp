#include "dml/train/distributed_objective.h"

#include <algorithm>

#include "dml/dist/all_gather.h"
#include "dml/util/class_blocks.h"
#include "dml/util/error.h"

namespace dml {

DistributedObjective::DistributedObjective(Communicator& comm, MarginLoss loss, SamplingOptions sampling, uint64_t seed)
    : comm_(comm), loss_(std::move(loss)), sampling_(sampling), seed_(seed) {}

ObjectiveResult DistributedObjective::compute(const torch::Tensor& local_embeddings,
                                              const std::vector<int64_t>& host_labels, uint64_t step,
                                              PhaseTimer* timer) {
  const int64_t local_count = local_embeddings.size(0);
  check(static_cast<int64_t>(host_labels.size()) == local_count * comm_.world_size(), "distributed objective: ",
        host_labels.size(), " labels for ", comm_.world_size(), " ranks x ", local_count, " embeddings");
  check_class_block_labels(host_labels.data(), static_cast<int64_t>(host_labels.size()), sampling_.blocks,
                           "distributed objective");
  // To a GPU from pinned memory without waiting (the copy is ordered before the kernels using it).
  const bool to_cuda = local_embeddings.is_cuda();
  torch::Tensor labels_host = torch::empty({static_cast<int64_t>(host_labels.size())},
                                           torch::TensorOptions().dtype(torch::kInt64).pinned_memory(to_cuda));
  std::copy(host_labels.begin(), host_labels.end(), labels_host.data_ptr<int64_t>());
  const torch::Tensor global_labels =
      to_cuda ? labels_host.to(local_embeddings.device(), /*non_blocking=*/true) : labels_host;
  // Sampling and loss in float32 whatever the forward precision was.
  const torch::Tensor global_embeddings = all_gather_with_grad(comm_, local_embeddings.to(torch::kFloat32).contiguous());
  if (timer) timer->mark("gather");
  const int64_t anchor_begin = static_cast<int64_t>(comm_.rank()) * local_count;
  const Triplets triplets =
      sample_triplets(global_embeddings.detach(), global_labels, anchor_begin, local_count, sampling_, seed_, step);
  const MarginLossImpl::Terms terms = loss_->terms(global_embeddings, global_labels, triplets);
  torch::Tensor count = terms.active_count.detach().clone();
  comm_.all_reduce_sum(count);
  ObjectiveResult result{MarginLossImpl::normalise(terms, count), count};
  if (timer) timer->mark("sampling_loss");
  return result;
}

}  // namespace dml
