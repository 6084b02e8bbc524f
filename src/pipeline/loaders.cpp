#include "dml/pipeline/loaders.h"

#include <torch/torch.h>

#include <limits>

#include "dml/util/error.h"
#include "pipeline/ordered_prefetcher.h"

namespace dml {
namespace {

void validate_source(const ImageSource& source, const AugmentOptions& augment, const char* who) {
  check(static_cast<bool>(source.read), who, ": the image source has no read function");
  check(source.height >= 1 && source.width >= 1 && source.channels >= 1, who, ": the image source has shape ",
        source.height, "x", source.width, "x", source.channels, "; check the shards' height/width/channels");
  validate_augment(source.height, source.width, source.channels, augment);
}


// Page-locked memory only exists with CUDA; without it pin_memory quietly means plain CPU memory.
bool can_pin(bool pin_memory) { return pin_memory && torch::cuda::is_available(); }

torch::TensorOptions host_options(torch::ScalarType dtype, bool pinned) {
  return torch::TensorOptions().dtype(dtype).device(torch::kCPU).pinned_memory(pinned);
}

// Reads rows[i] and augments it with sample index indices[i] into images[i]. Returns false if stopped.
bool fill_images(const ImageSource& source, const AugmentOptions& augment, uint64_t seed, uint64_t step,
                 const std::vector<int64_t>& rows, const std::vector<int64_t>& indices, const at::Tensor& images,
                 const std::atomic<bool>& stop) {
  std::vector<uint8_t> buffer(static_cast<size_t>(source.image_bytes()));
  const int64_t per_image = augment.out_channels * augment.crop_size * augment.crop_size;
  uint8_t* out = images.data_ptr<uint8_t>();
  for (size_t i = 0; i < rows.size(); ++i) {
    if (stop) return false;
    source.read(rows[i], buffer.data());
    augment_image(buffer.data(), source.height, source.width, source.channels, augment, seed, step,
                  static_cast<uint64_t>(indices[i]), out + static_cast<int64_t>(i) * per_image);
  }
  return true;
}

Batch make_batch(const ImageSource& source, const AugmentOptions& augment, uint64_t seed, uint64_t step,
                 const std::vector<int64_t>& rows, std::vector<int64_t> indices, bool pinned,
                 const std::atomic<bool>& stop) {
  const int64_t n = static_cast<int64_t>(rows.size());
  Batch batch;
  batch.step = step;
  batch.images = torch::empty({n, augment.out_channels, augment.crop_size, augment.crop_size},
                              host_options(torch::kUInt8, pinned));
  if (!fill_images(source, augment, seed, step, rows, indices, batch.images, stop)) return Batch{};
  batch.labels = torch::empty({n}, host_options(torch::kInt64, pinned));
  batch.global_indices = torch::empty({n}, host_options(torch::kInt64, pinned));
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  int64_t* global = batch.global_indices.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = source.labels[static_cast<size_t>(rows[static_cast<size_t>(i)])];
    global[i] = indices[static_cast<size_t>(i)];
  }
  return batch;
}

}  // namespace

void validate_loader_threads(int workers, int prefetch) {
  check_option(workers >= 1, "workers", "loader: ", workers, " worker threads; use at least 1");
  check_option(prefetch >= 2, "prefetch", "loader: prefetch is ", prefetch, "; keep at least 2 batches in flight");
}

struct TrainLoader::State {
  ImageSource source;
  GlobalBatchSampler sampler;
  int64_t replica;
  AugmentOptions augment;
  bool pinned;  // pin requested and CUDA available
};

TrainLoader::TrainLoader(ImageSource source, GlobalBatchSampler sampler, int64_t replica, AugmentOptions augment,
                         uint64_t first_step, int workers, int prefetch, bool pin_memory) {
  validate_source(source, augment, "train loader");
  validate_loader_threads(workers, prefetch);
  check(sampler.num_rows() == source.size(), "train loader: the batch sampler was built for ", sampler.num_rows(),
        " rows but the image source has ", source.size(), "; build both from the same training split");
  check(replica >= 0 && replica < sampler.options().replicas, "train loader: replica ", replica, " outside 0..",
        sampler.options().replicas - 1);
  state_ = std::make_shared<State>(
      State{std::move(source), std::move(sampler), replica, augment, can_pin(pin_memory)});
  std::shared_ptr<State> state = state_;
  auto make = [state](uint64_t step, const std::atomic<bool>& stop) {
    const int64_t batch_size = state->sampler.options().batch_size;
    std::vector<int64_t> rows = state->sampler.replica_rows(step, state->replica);
    std::vector<int64_t> indices(rows.size());
    for (int64_t i = 0; i < batch_size; ++i) indices[static_cast<size_t>(i)] = state->replica * batch_size + i;
    return make_batch(state->source, state->augment, state->sampler.options().seed, step, rows, std::move(indices),
                      state->pinned, stop);
  };
  prefetcher_ = std::make_unique<OrderedPrefetcher>(make, first_step, std::numeric_limits<uint64_t>::max(),
                                                    workers, prefetch);
}

TrainLoader::~TrainLoader() = default;

Batch TrainLoader::next() {
  Batch batch;
  prefetcher_->next(batch);
  return batch;
}

struct EvalLoader::State {
  ImageSource source;
  int64_t begin, end, batch_size;
  AugmentOptions augment;
  bool pinned;  // pin requested and CUDA available
};

EvalLoader::EvalLoader(ImageSource source, int64_t begin, int64_t end, int64_t batch_size, AugmentOptions augment,
                       int workers, int prefetch, bool pin_memory) {
  augment.train = false;  // evaluation always center-crops
  validate_source(source, augment, "eval loader");
  validate_loader_threads(workers, prefetch);
  check(0 <= begin && begin <= end && end <= source.size(), "eval loader: rows [", begin, ", ", end,
        ") are not inside the split's ", source.size(), " rows");
  check(batch_size >= 1, "eval loader: batch size ", batch_size, "; use a positive --batch-size");
  num_batches_ = (end - begin + batch_size - 1) / batch_size;
  state_ = std::make_shared<State>(State{std::move(source), begin, end, batch_size, augment, can_pin(pin_memory)});
  std::shared_ptr<State> state = state_;
  auto make = [state](uint64_t index, const std::atomic<bool>& stop) {
    const int64_t first = state->begin + static_cast<int64_t>(index) * state->batch_size;
    const int64_t last = std::min(state->end, first + state->batch_size);
    std::vector<int64_t> rows(static_cast<size_t>(last - first));
    for (int64_t r = first; r < last; ++r) rows[static_cast<size_t>(r - first)] = r;
    std::vector<int64_t> indices = rows;
    return make_batch(state->source, state->augment, /*seed=*/0, index, rows, std::move(indices),
                      state->pinned, stop);
  };
  prefetcher_ = std::make_unique<OrderedPrefetcher>(make, 0, static_cast<uint64_t>(num_batches_), workers, prefetch);
}

EvalLoader::~EvalLoader() = default;

bool EvalLoader::next(Batch& batch) { return prefetcher_->next(batch); }

}  // namespace dml
