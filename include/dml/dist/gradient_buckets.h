#pragma once
// Gradient all-reduce (SUM) in buckets: gradients travel through a few flat buffers of
// about bucket_bytes each, never one collective per parameter.
#include <cstdint>
#include <memory>
#include <vector>

#include "dml/dist/communicator.h"

namespace dml {

class GradientBuckets {
 public:
  static constexpr int64_t kDefaultBucketBytes = 25 * 1024 * 1024;
  static constexpr int64_t kDefaultFirstBucketBytes = 1024 * 1024;

  // parameters: defined, requires_grad, distinct, dense; in registration order (module.parameters()).
  // They are assigned to buckets in reverse order (the order in which backward produces their
  // gradients); a bucket holds one dtype on one device and is closed once it reaches its size: the
  // first bucket of each (dtype, device) first_bucket_bytes, the next ones bucket_bytes. A parameter
  // larger than a bucket still goes whole into one. Every rank must pass the same list (names,
  // shapes, dtypes: check_same_module) so that buckets match across ranks.
  // The flat buffers (one copy of every gradient) are allocated here. `comm` must outlive this.
  // Collective: all ranks construct together; one all_gather compares the bucket layouts, and a
  // mismatch throws the same dml::Error on every rank.
  //
  // overlap_with_backward: every parameter gets an autograd hook that copies its gradient into its
  // bucket as soon as backward produces it; a bucket whose gradients are all in starts its
  // all-reduce at once (start_all_reduce_sum), in bucket order on every rank, while backward goes
  // on. Valid only when each parameter's gradient is complete when its hook runs: one replica per
  // rank (several replicas are summed into the primary only after backward). Call begin_backward()
  // before each backward whose gradients synchronize() will reduce.
  // With a world of one rank no bucket is used at all: the gradients already are the sums.
  GradientBuckets(const std::vector<at::Tensor>& parameters, Communicator& comm,
                  int64_t bucket_bytes = kDefaultBucketBytes, int64_t first_bucket_bytes = kDefaultFirstBucketBytes,
                  bool overlap_with_backward = false);
  ~GradientBuckets();
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  // Arms the hooks (overlap_with_backward) for the next backward; no-op otherwise.
  void begin_backward();

  // Call after backward, before the optimiser step, on every rank: replaces every parameter's
  // gradient by its SUM over ranks, one all-reduce per bucket in bucket order (with overlap: starts
  // the buckets backward did not complete, e.g. parameters without a gradient this step, then waits
  // for all). An undefined gradient counts as zeros and is defined (zeros, then the sum) so ranks
  // stay lock-step.
  void synchronize();
  bool overlaps_backward() const;
  // Buckets the hooks started during the last backward (the rest started in synchronize()).
  int64_t buckets_started_during_backward() const;

  // After synchronize(): a bool scalar on the parameters' device, true when every summed gradient is
  // finite (no NaN or inf). CPU buckets: one pass on the host; GPU buckets: device work only (no
  // host synchronisation).
  at::Tensor all_finite() const;

  int64_t num_buckets() const;
  // Bytes of each bucket's buffer, in bucket (= all-reduce) order.
  std::vector<int64_t> bucket_sizes_bytes() const;
  // Indices into `parameters` held by bucket b, in the order they sit in its buffer.
  std::vector<int64_t> bucket_parameter_indices(int64_t bucket) const;

 private:
  void check_layout_across_ranks() const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dml
