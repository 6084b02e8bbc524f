// Bucketed gradient all-reduce. Buckets follow backward's order (reverse registration), like
// PyTorch DDP, so that a future overlap with backward (hooks launching a bucket once all its
// gradients are ready) needs no change to the layout. Today synchronize() runs after backward.
#include "dml/dist/gradient_buckets.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include "dist/comm_device.h"
#include "dml/util/error.h"

namespace dml {

struct GradientBuckets::Impl {
  Impl(Communicator& c, std::vector<torch::Tensor> p) : comm(c), params(std::move(p)) {}
  struct Bucket {
    std::vector<int64_t> params;   // indices into Impl::params
    std::vector<int64_t> offsets;  // element offset of each parameter in `buffer`
    int64_t numel = 0;
    torch::Tensor buffer;          // [numel], the bucket's dtype and device
  };
  Communicator& comm;
  std::vector<torch::Tensor> params;
  std::vector<Bucket> buckets;
  bool bypass = false;   // a world of one rank: nothing to reduce
  bool overlap = false;  // hooks start the buckets during backward

  // Overlap state of the current backward (guarded by `mutex`: hooks may run on autograd threads).
  std::mutex mutex;
  bool armed = false;
  std::vector<std::pair<int64_t, int64_t>> place;  // parameter -> (bucket, position in it)
  std::vector<std::vector<char>> filled;           // per bucket and position: gradient copied in
  std::vector<int64_t> missing;                    // per bucket: positions still to fill
  int64_t next_start = 0;                          // buckets start in order: the next one to start
  int64_t started_during_backward = 0;
  std::vector<std::unique_ptr<PendingCollective>> pending;  // per bucket, once started
  std::vector<std::pair<int64_t, unsigned>> hooks;          // (parameter, hook handle)

  torch::Tensor slot(int64_t bucket, int64_t k) {
    Bucket& b = buckets[bucket];
    const torch::Tensor& p = params[b.params[k]];
    return b.buffer.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
  }
  // Starts every bucket, in order, from next_start on whose gradients are all in.
  void start_ready_buckets() {
    while (next_start < static_cast<int64_t>(buckets.size()) && missing[next_start] == 0) {
      pending[next_start] = comm.start_all_reduce_sum(buckets[next_start].buffer);
      ++next_start;
    }
    for (auto& p : pending) {
      if (p) p->test();  // MPI progresses its started collectives only inside MPI calls
    }
  }
  void on_gradient(int64_t param, const torch::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed) return;
    const auto [bucket, k] = place[param];
    if (filled[bucket][k]) return;
    {
      torch::NoGradGuard no_grad;
      slot(bucket, k).copy_(grad);
    }
    filled[bucket][k] = 1;
    --missing[bucket];
    start_ready_buckets();
  }
};

GradientBuckets::GradientBuckets(const std::vector<at::Tensor>& parameters, Communicator& comm, int64_t bucket_bytes,
                                 int64_t first_bucket_bytes, bool overlap_with_backward)
    : impl_(std::make_unique<Impl>(comm, parameters)) {
  check(bucket_bytes > 0 && first_bucket_bytes > 0, "GradientBuckets: bucket_bytes (", bucket_bytes,
        ") and first_bucket_bytes (", first_bucket_bytes, ") must be positive");
  std::set<const void*> seen;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const torch::Tensor& p = parameters[i];
    check(p.defined(), "GradientBuckets: parameter ", i, " is undefined; pass module.parameters()");
    check(p.requires_grad(), "GradientBuckets: parameter ", i, " ", p.sizes(),
          " does not require grad; pass only trainable parameters");
    check(p.layout() == torch::kStrided, "GradientBuckets: parameter ", i, " is sparse; only dense parameters");
    check(seen.insert(p.unsafeGetTensorImpl()).second, "GradientBuckets: parameter ", i,
          " appears twice in the list; pass each parameter once");
  }

  // One open bucket per (dtype, device); a bucket closes once it holds at least its limit.
  using Key = std::tuple<int, int, int>;  // dtype, device type, device index
  struct Open {
    Impl::Bucket bucket;
    int64_t bytes = 0;
    bool first = true;
  };
  std::map<Key, Open> open;
  std::vector<Key> open_order;  // deterministic order for the buckets still open at the end
  auto finish = [&](Open& o) {
    Impl::Bucket& b = o.bucket;
    const torch::Tensor& p0 = impl_->params[b.params.front()];
    b.buffer = torch::empty({b.numel}, p0.options().requires_grad(false));
    impl_->buckets.push_back(std::move(b));
    o.bucket = Impl::Bucket{};
    o.bytes = 0;
    o.first = false;
  };
  for (int64_t i = static_cast<int64_t>(parameters.size()) - 1; i >= 0; --i) {
    const torch::Tensor& p = parameters[i];
    const Key key{static_cast<int>(p.scalar_type()), static_cast<int>(p.device().type()), p.device().index()};
    if (!open.count(key)) open_order.push_back(key);
    Open& o = open[key];
    o.bucket.params.push_back(i);
    o.bucket.offsets.push_back(o.bucket.numel);
    o.bucket.numel += p.numel();
    o.bytes += p.numel() * static_cast<int64_t>(p.element_size());
    if (o.bytes >= (o.first ? first_bucket_bytes : bucket_bytes)) finish(o);
  }
  for (const Key& key : open_order) {
    if (!open[key].bucket.params.empty()) finish(open[key]);
  }
  check_layout_across_ranks();
  Impl& impl = *impl_;
  impl.bypass = comm.world_size() == 1;
  impl.overlap = overlap_with_backward && !impl.bypass;
  if (!impl.overlap) return;
  impl.place.resize(parameters.size());
  for (size_t b = 0; b < impl.buckets.size(); ++b) {
    for (size_t k = 0; k < impl.buckets[b].params.size(); ++k) {
      impl.place[impl.buckets[b].params[k]] = {static_cast<int64_t>(b), static_cast<int64_t>(k)};
    }
  }
  Impl* raw = impl_.get();
  for (size_t i = 0; i < parameters.size(); ++i) {
    const int64_t index = static_cast<int64_t>(i);
    const unsigned handle =
        impl.params[i].register_hook([raw, index](const torch::Tensor& grad) { raw->on_gradient(index, grad); });
    impl.hooks.emplace_back(index, handle);
  }
}

// Ranks with different parameter lists would issue different numbers of all-reduces and hang;
// one all_gather of a layout hash at construction turns that into an error on every rank.
void GradientBuckets::check_layout_across_ranks() const {
  uint64_t hash = 1469598103934665603ULL;
  auto mix = [&](int64_t value) {
    for (int byte = 0; byte < 8; ++byte) {
      hash ^= static_cast<uint64_t>(value >> (8 * byte)) & 0xffu;
      hash *= 1099511628211ULL;
    }
  };
  for (const auto& b : impl_->buckets) {
    mix(-1);  // bucket boundary
    mix(static_cast<int64_t>(b.buffer.scalar_type()));
    for (int64_t i : b.params) mix(impl_->params[i].numel());
  }
  Communicator& comm = impl_->comm;
  const torch::Tensor mine =
      torch::tensor({static_cast<int64_t>(hash), num_buckets(), static_cast<int64_t>(impl_->params.size())},
                    torch::kInt64)
          .to(dist::comm_device(comm));
  const torch::Tensor all = comm.all_gather(mine).cpu().view({comm.world_size(), 3});
  for (int r = 1; r < comm.world_size(); ++r) {
    check(torch::equal(all[r], all[0]), "GradientBuckets: the parameter lists differ across ranks (rank 0: ",
          all[0][2].item<int64_t>(), " parameters in ", all[0][1].item<int64_t>(), " buckets; rank ", r, ": ",
          all[r][2].item<int64_t>(), " parameters in ", all[r][1].item<int64_t>(),
          " buckets, or different shapes/dtypes); build the same model on every rank (check_same_module)");
  }
}

GradientBuckets::~GradientBuckets() {
  for (const auto& [param, handle] : impl_->hooks) impl_->params[param].remove_hook(handle);
}

bool GradientBuckets::overlaps_backward() const { return impl_->overlap; }
int64_t GradientBuckets::buckets_started_during_backward() const { return impl_->started_during_backward; }

void GradientBuckets::begin_backward() {
  Impl& impl = *impl_;
  if (!impl.overlap) return;
  std::lock_guard<std::mutex> lock(impl.mutex);
  impl.filled.assign(impl.buckets.size(), {});
  impl.missing.assign(impl.buckets.size(), 0);
  for (size_t b = 0; b < impl.buckets.size(); ++b) {
    impl.filled[b].assign(impl.buckets[b].params.size(), 0);
    impl.missing[b] = static_cast<int64_t>(impl.buckets[b].params.size());
  }
  impl.pending.clear();
  impl.pending.resize(impl.buckets.size());
  impl.next_start = 0;
  impl.armed = true;
}

void GradientBuckets::synchronize() {
  torch::NoGradGuard no_grad;
  Impl& impl = *impl_;
  if (impl.bypass) {
    for (auto& p : impl.params) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    }
    return;
  }
  if (impl.overlap && impl.armed) {
    {
      std::lock_guard<std::mutex> lock(impl.mutex);
      impl.armed = false;
      impl.started_during_backward = impl.next_start;
      // Parameters whose hook did not run (no gradient this step) go in as they are, or as zeros.
      for (size_t b = 0; b < impl.buckets.size(); ++b) {
        for (size_t k = 0; k < impl.buckets[b].params.size(); ++k) {
          if (impl.filled[b][k]) continue;
          const torch::Tensor& grad = impl.params[impl.buckets[b].params[k]].grad();
          torch::Tensor slot = impl.slot(static_cast<int64_t>(b), static_cast<int64_t>(k));
          grad.defined() ? slot.copy_(grad) : slot.zero_();
          impl.filled[b][k] = 1;
          --impl.missing[b];
        }
      }
      impl.start_ready_buckets();
    }
    for (size_t b = 0; b < impl.buckets.size(); ++b) {
      impl.pending[b]->wait();
      Impl::Bucket& bucket = impl.buckets[b];
      for (size_t k = 0; k < bucket.params.size(); ++k) {
        torch::Tensor& p = impl.params[bucket.params[k]];
        const torch::Tensor slot = impl.slot(static_cast<int64_t>(b), static_cast<int64_t>(k));
        if (p.grad().defined()) {
          p.mutable_grad().copy_(slot);
        } else {
          p.mutable_grad() = slot.clone();
        }
      }
    }
    impl.pending.clear();
    return;
  }
  for (Impl::Bucket& b : impl_->buckets) {
    for (size_t k = 0; k < b.params.size(); ++k) {
      torch::Tensor& p = impl_->params[b.params[k]];
      torch::Tensor slot = b.buffer.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
      const torch::Tensor grad = p.grad();
      if (grad.defined()) {
        check(grad.layout() == torch::kStrided, "GradientBuckets: parameter ", b.params[k],
              " has a sparse gradient; only dense gradients are supported");
        slot.copy_(grad);
      } else {
        slot.zero_();
      }
    }
    impl_->comm.all_reduce_sum(b.buffer);
    for (size_t k = 0; k < b.params.size(); ++k) {
      torch::Tensor& p = impl_->params[b.params[k]];
      torch::Tensor slot = b.buffer.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(slot);
      } else {
        p.mutable_grad() = slot.clone();
      }
    }
  }
}

namespace {
// x * 0 is 0 for every finite x and NaN for inf or NaN, so the sum of x * 0 is 0 exactly when every
// element is finite, and it cannot overflow (a plain sum of large finite values could).
template <typename T>
bool all_finite_cpu(const T* x, int64_t n) {
  std::atomic<bool> finite{true};
  at::parallel_for(0, n, 65536, [&](int64_t begin, int64_t end) {
    T acc = 0;
    for (int64_t i = begin; i < end; ++i) acc += x[i] * T(0);
    if (acc != T(0)) finite = false;
  });
  return finite;
}
}  // namespace

at::Tensor GradientBuckets::all_finite() const {
  torch::NoGradGuard no_grad;
  if (impl_->buckets.empty()) return torch::ones({}, torch::kBool);
  const torch::Device device = impl_->buckets.front().buffer.device();
  bool host_finite = true;
  std::vector<torch::Tensor> device_sums;
  // The summed gradients: the bucket buffers, or (one rank, no buckets used) the gradients.
  std::vector<torch::Tensor> sums;
  if (impl_->bypass) {
    for (const auto& p : impl_->params) {
      const torch::Tensor& g = p.grad();
      // A dense tensor in any layout (channels-last) covers exactly numel() elements from data_ptr().
      if (g.defined()) sums.push_back(g.is_non_overlapping_and_dense() ? g : g.contiguous());
    }
  } else {
    for (const auto& b : impl_->buckets) sums.push_back(b.buffer);
  }
  for (const torch::Tensor& x : sums) {
    if (x.device().is_cpu() && x.scalar_type() == torch::kFloat32) {
      host_finite = host_finite && all_finite_cpu(x.data_ptr<float>(), x.numel());
    } else if (x.device().is_cpu() && x.scalar_type() == torch::kFloat64) {
      host_finite = host_finite && all_finite_cpu(x.data_ptr<double>(), x.numel());
    } else {
      device_sums.push_back(x.mul(0).sum(torch::kFloat32).to(device));  // stays on the device: no sync
    }
  }
  torch::Tensor finite = torch::full({}, host_finite, torch::TensorOptions().dtype(torch::kBool).device(device));
  if (!device_sums.empty()) finite = finite.logical_and(torch::stack(device_sums).eq(0).all());
  return finite;
}

int64_t GradientBuckets::num_buckets() const { return static_cast<int64_t>(impl_->buckets.size()); }

std::vector<int64_t> GradientBuckets::bucket_sizes_bytes() const {
  std::vector<int64_t> sizes;
  for (const auto& b : impl_->buckets) sizes.push_back(b.numel * static_cast<int64_t>(b.buffer.element_size()));
  return sizes;
}

std::vector<int64_t> GradientBuckets::bucket_parameter_indices(int64_t bucket) const {
  check(bucket >= 0 && bucket < num_buckets(), "GradientBuckets: bucket ", bucket, " out of range [0, ",
        num_buckets(), ")");
  return impl_->buckets[bucket].params;
}

}  // namespace dml
