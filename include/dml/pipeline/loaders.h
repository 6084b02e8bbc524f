#pragma once
// Loader threads, so that the device never waits for data. Workers assemble whole batches ahead of
// the consumer; next() hands them out strictly in order. One consumer thread per loader.
#include <cstdint>
#include <memory>

#include "dml/pipeline/augment.h"
#include "dml/pipeline/batch.h"
#include "dml/pipeline/batch_sampler.h"
#include "dml/pipeline/image_source.h"

namespace dml {

class OrderedPrefetcher;

// workers >= 1 loader threads and prefetch >= 2 batches in flight. Throws OptionError ("workers",
// "prefetch").
void validate_loader_threads(int workers, int prefetch);

// Training loader: the batches of steps first_step, first_step+1, ... for one replica. Batch of step s:
// rows = sampler.replica_rows(s, replica); image i = augment_image(read(rows[i]), augment, seed, s,
// replica*B + i); labels[i] = source.labels[rows[i]]; global_indices[i] = replica*B + i.
// Workers (>= 1) keep up to `prefetch` (>= 2) batches assembled or in progress ahead of the consumer.
// Throws dml::Error on bad arguments (source shape vs crop, sampler built for other labels, ...).
// The first exception raised in a worker (e.g. by source.read) is rethrown by next() from then on.
// pin_memory: page-locked host memory when a CUDA device is available, plain CPU memory otherwise.
// The destructor stops the workers promptly (they check between images) and joins them.
class TrainLoader {
 public:
  TrainLoader(ImageSource source, GlobalBatchSampler sampler, int64_t replica, AugmentOptions augment,
              uint64_t first_step, int workers, int prefetch, bool pin_memory);
  ~TrainLoader();
  TrainLoader(const TrainLoader&) = delete;
  TrainLoader& operator=(const TrainLoader&) = delete;

  Batch next();

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::unique_ptr<OrderedPrefetcher> prefetcher_;
};

// Evaluation loader: rows [begin, end) of the source in order, batches of batch_size (the last one
// shorter), always center crop (augment.train is ignored), same worker/prefetch/error behaviour.
// Batch n holds rows [begin + n*batch_size, min(end, begin + (n+1)*batch_size)); batch.step = n;
// batch.global_indices = the source rows. next() returns false (batch untouched) after the last one.
// An empty range [begin, begin) is allowed and yields no batch.
class EvalLoader {
 public:
  EvalLoader(ImageSource source, int64_t begin, int64_t end, int64_t batch_size, AugmentOptions augment,
             int workers, int prefetch, bool pin_memory);
  ~EvalLoader();
  EvalLoader(const EvalLoader&) = delete;
  EvalLoader& operator=(const EvalLoader&) = delete;

  bool next(Batch& batch);
  int64_t num_batches() const { return num_batches_; }

 private:
  struct State;
  std::shared_ptr<State> state_;
  int64_t num_batches_ = 0;
  std::unique_ptr<OrderedPrefetcher> prefetcher_;
};

}  // namespace dml
