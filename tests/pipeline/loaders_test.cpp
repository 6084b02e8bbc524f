#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <thread>

#include "dml/pipeline/loaders.h"
#include "dml/util/error.h"

namespace dml {
namespace {

// Pixel value of an in-memory test image, distinct across rows, positions and channels.
uint8_t pixel(int64_t row, int64_t y, int64_t x, int64_t c) {
  return static_cast<uint8_t>((row * 131 + y * 31 + x * 7 + c * 83) & 255);
}

// `n` images of h x w x channels, label = row % num_classes. read() only reads shared state: thread-safe.
ImageSource memory_source(int64_t n, int64_t h, int64_t w, int64_t channels, int64_t num_classes) {
  ImageSource source;
  source.height = h;
  source.width = w;
  source.channels = channels;
  source.num_classes = num_classes;
  for (int64_t r = 0; r < n; ++r) source.labels.push_back(r % num_classes);
  source.read = [h, w, channels](int64_t row, uint8_t* dst) {
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        for (int64_t c = 0; c < channels; ++c) dst[(y * w + x) * channels + c] = pixel(row, y, x, c);
      }
    }
  };
  return source;
}

// The batch of (step, replica) assembled serially from the sampler and augment_image.
Batch serial_batch(const ImageSource& source, const GlobalBatchSampler& sampler, int64_t replica,
                   const AugmentOptions& augment, uint64_t step) {
  const int64_t b = sampler.options().batch_size, crop = augment.crop_size;
  const auto rows = sampler.replica_rows(step, replica);
  Batch batch;
  batch.step = step;
  batch.images = torch::zeros({b, augment.out_channels, crop, crop}, torch::kUInt8);
  batch.labels = torch::zeros({b}, torch::kInt64);
  batch.global_indices = torch::zeros({b}, torch::kInt64);
  std::vector<uint8_t> hwc(source.height * source.width * source.channels);
  for (int64_t i = 0; i < b; ++i) {
    source.read(rows[i], hwc.data());
    augment_image(hwc.data(), source.height, source.width, source.channels, augment, sampler.options().seed, step,
                  replica * b + i, batch.images[i].data_ptr<uint8_t>());
    batch.labels[i] = source.labels[rows[i]];
    batch.global_indices[i] = replica * b + i;
  }
  return batch;
}

void expect_same_batch(const Batch& got, const Batch& want) {
  EXPECT_EQ(got.step, want.step);
  ASSERT_TRUE(got.images.defined());
  EXPECT_EQ(got.images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(got.images.sizes(), want.images.sizes());
  EXPECT_TRUE(torch::equal(got.images, want.images)) << "step " << want.step;
  EXPECT_TRUE(torch::equal(got.labels, want.labels)) << "step " << want.step;
  EXPECT_TRUE(torch::equal(got.global_indices, want.global_indices)) << "step " << want.step;
}

class TrainLoaderWorkers : public testing::TestWithParam<int> {};

TEST_P(TrainLoaderWorkers, BatchesComeInStepOrderAndEqualSerialAssembly) {
  const ImageSource source = memory_source(120, 12, 14, 3, 12);
  const GlobalBatchSampler sampler(source.labels, 12, BatchPlanOptions{2, 12, 3, 77});
  const AugmentOptions augment{10, true, 3};
  for (int64_t replica : {0, 1}) {
    TrainLoader loader(source, sampler, replica, augment, /*first_step=*/5, GetParam(), /*prefetch=*/3,
                       /*pin_memory=*/false);
    for (uint64_t step = 5; step < 17; ++step) {
      expect_same_batch(loader.next(), serial_batch(source, sampler, replica, augment, step));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, TrainLoaderWorkers, testing::Values(1, 4));

TEST(TrainLoader, ReplicaSplitGivesTheSameImagesAsOneReplica) {
  const ImageSource source = memory_source(200, 10, 10, 3, 20);
  const AugmentOptions augment{8, true, 3};
  TrainLoader one(source, GlobalBatchSampler(source.labels, 20, BatchPlanOptions{1, 24, 4, 5}), 0, augment, 0, 2, 2,
                  false);
  std::vector<std::unique_ptr<TrainLoader>> parts;
  for (int64_t r = 0; r < 3; ++r) {
    parts.push_back(std::make_unique<TrainLoader>(
        source, GlobalBatchSampler(source.labels, 20, BatchPlanOptions{3, 8, 4, 5}), r, augment, 0, 2, 2, false));
  }
  for (int step = 0; step < 6; ++step) {
    const Batch whole = one.next();
    for (int64_t r = 0; r < 3; ++r) {
      const Batch part = parts[r]->next();
      EXPECT_TRUE(torch::equal(part.images, whole.images.slice(0, r * 8, (r + 1) * 8))) << step << " " << r;
      EXPECT_TRUE(torch::equal(part.labels, whole.labels.slice(0, r * 8, (r + 1) * 8)));
      EXPECT_TRUE(torch::equal(part.global_indices, whole.global_indices.slice(0, r * 8, (r + 1) * 8)));
    }
  }
}

TEST(TrainLoader, GrayImagesPinnedRequestWorksWithoutCuda) {
  const ImageSource source = memory_source(40, 9, 9, 1, 4);
  const GlobalBatchSampler sampler(source.labels, 4, BatchPlanOptions{1, 8, 2, 1});
  TrainLoader loader(source, sampler, 0, AugmentOptions{7, true, 3}, 0, 1, 2, /*pin_memory=*/true);
  const Batch batch = loader.next();
  EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{8, 3, 7, 7}));
  EXPECT_TRUE(torch::equal(batch.images.select(1, 0), batch.images.select(1, 2)));
  expect_same_batch(batch, serial_batch(source, sampler, 0, AugmentOptions{7, true, 3}, 0));
}

TEST(TrainLoader, WorkerExceptionIsRethrownFromNext) {
  ImageSource source = memory_source(60, 8, 8, 3, 6);
  auto reads = std::make_shared<std::atomic<int>>(0);
  auto inner = source.read;
  source.read = [inner, reads](int64_t row, uint8_t* dst) {
    if (++*reads > 25) throw Error("shard train-0-of-1.h5: read of row failed");
    inner(row, dst);
  };
  const GlobalBatchSampler sampler(source.labels, 6, BatchPlanOptions{1, 10, 5, 1});
  TrainLoader loader(source, sampler, 0, AugmentOptions{6, true, 3}, 0, 2, 2, false);
  int delivered = 0;
  std::string message;
  try {
    for (int i = 0; i < 10; ++i) {
      loader.next();
      ++delivered;
    }
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("read of row failed"), std::string::npos) << "delivered " << delivered;
  EXPECT_LE(delivered, 2);  // at most 25 successful reads = 2 whole batches
  EXPECT_THROW(loader.next(), Error);  // and again on every later call
}

TEST(TrainLoader, DestructorStopsBusyWorkers) {
  // Slow reads (2 ms each, 30 per batch, 8 batches of prefetch) keep the 4 workers busy for far longer
  // than the destructor may take. The loaders are built and destroyed on a helper thread so that a hang
  // fails this test after a bounded wait instead of blocking it until ctest's timeout.
  struct Shared {
    ImageSource source;
    std::atomic<int64_t> reads{0};
    std::vector<double> destructor_ms;
    std::vector<int64_t> reads_at_destruction, reads_after_destruction;
  };
  auto shared = std::make_shared<Shared>();
  shared->source = memory_source(60, 8, 8, 3, 6);
  auto inner = shared->source.read;
  std::weak_ptr<Shared> weak = shared;  // the source lives inside Shared: no ownership cycle
  shared->source.read = [inner, weak](int64_t row, uint8_t* dst) {
    if (auto s = weak.lock()) ++s->reads;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    inner(row, dst);
  };
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread runner([shared, done] {
    using Clock = std::chrono::steady_clock;
    const GlobalBatchSampler sampler(shared->source.labels, 6, BatchPlanOptions{1, 30, 5, 1});
    for (int i = 0; i < 3; ++i) {
      auto loader = std::make_unique<TrainLoader>(shared->source, sampler, 0, AugmentOptions{6, true, 3}, 0, 4, 8,
                                                  false);
      if (i == 1) loader->next();
      // Busy: wait (bounded) until the workers are reading.
      const int64_t before = shared->reads;
      for (int wait = 0; wait < 2000 && shared->reads <= before + 4; ++wait) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      shared->reads_at_destruction.push_back(shared->reads);
      const auto start = Clock::now();
      loader.reset();
      shared->destructor_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      const int64_t stopped = shared->reads;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      shared->reads_after_destruction.push_back(shared->reads - stopped);
    }
    done->set_value();
  });
  if (finished.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    runner.detach();  // it holds its own references; the process ends with the test program
    FAIL() << "TrainLoader's destructor did not return within 60 s while its workers were busy";
  }
  runner.join();
  ASSERT_EQ(shared->destructor_ms.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("loader " + std::to_string(i));
    EXPECT_GT(shared->reads_at_destruction[i], 0);  // the workers had started reading
    // Stopping between reads takes milliseconds; the bound is generous for a loaded machine. (A
    // destructor that let the workers run out of work would never return: the steps are unbounded.)
    EXPECT_LT(shared->destructor_ms[i], 2000.0);
    EXPECT_EQ(shared->reads_after_destruction[i], 0) << "a worker still read after the destructor returned";
  }
}

TEST(TrainLoader, BadArgumentsAreErrors) {
  const ImageSource source = memory_source(40, 9, 9, 3, 4);
  const GlobalBatchSampler sampler(source.labels, 4, BatchPlanOptions{2, 8, 2, 1});
  EXPECT_THROW(TrainLoader(source, sampler, 0, AugmentOptions{10, true, 3}, 0, 1, 2, false), Error);  // crop > 9
  EXPECT_THROW(TrainLoader(source, sampler, 0, AugmentOptions{7, true, 3}, 0, 0, 2, false), Error);   // workers
  EXPECT_THROW(TrainLoader(source, sampler, 0, AugmentOptions{7, true, 3}, 0, 1, 1, false), Error);   // prefetch
  EXPECT_THROW(TrainLoader(source, sampler, 2, AugmentOptions{7, true, 3}, 0, 1, 2, false), Error);   // replica
  const ImageSource other = memory_source(41, 9, 9, 3, 4);
  try {
    TrainLoader(other, sampler, 0, AugmentOptions{7, true, 3}, 0, 1, 2, false);
    FAIL() << "no error for a sampler of another split";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("40 rows"), std::string::npos) << e.what();
  }
}

class EvalLoaderWorkers : public testing::TestWithParam<int> {};

TEST_P(EvalLoaderWorkers, CoversTheRangeOnceInOrderWithCenterCrops) {
  const int64_t h = 11, w = 12, crop = 8;
  const ImageSource source = memory_source(23, h, w, 3, 5);
  // augment.train = true is ignored: evaluation center-crops.
  EvalLoader loader(source, 3, 21, 5, AugmentOptions{crop, true, 3}, GetParam(), 2, false);
  EXPECT_EQ(loader.num_batches(), 4);
  std::vector<int64_t> seen;
  std::vector<int64_t> sizes;
  Batch batch;
  uint64_t expected_step = 0;
  while (loader.next(batch)) {
    EXPECT_EQ(batch.step, expected_step++);
    const int64_t n = batch.images.size(0);
    sizes.push_back(n);
    ASSERT_EQ(batch.global_indices.size(0), n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t row = batch.global_indices[i].item<int64_t>();
      seen.push_back(row);
      EXPECT_EQ(batch.labels[i].item<int64_t>(), row % 5);
      // Center crop by hand: offsets (11-8)/2 = 1 and (12-8)/2 = 2.
      auto img = batch.images[i];
      const uint8_t* p = img.data_ptr<uint8_t>();
      for (int64_t c = 0; c < 3; ++c) {
        for (int64_t y = 0; y < crop; ++y) {
          for (int64_t x = 0; x < crop; ++x) {
            ASSERT_EQ(p[(c * crop + y) * crop + x], pixel(row, y + 1, x + 2, c)) << row;
          }
        }
      }
    }
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{5, 5, 5, 3}));
  std::vector<int64_t> want;
  for (int64_t r = 3; r < 21; ++r) want.push_back(r);
  EXPECT_EQ(seen, want);
  EXPECT_FALSE(loader.next(batch));
}

INSTANTIATE_TEST_SUITE_P(Workers, EvalLoaderWorkers, testing::Values(1, 3));

TEST(EvalLoader, EmptyRangeAndBadRange) {
  const ImageSource source = memory_source(10, 8, 8, 3, 2);
  EvalLoader empty(source, 4, 4, 3, AugmentOptions{8, false, 3}, 1, 2, false);
  Batch batch;
  EXPECT_EQ(empty.num_batches(), 0);
  EXPECT_FALSE(empty.next(batch));
  EXPECT_THROW(EvalLoader(source, 5, 11, 3, AugmentOptions{8, false, 3}, 1, 2, false), Error);
  EXPECT_THROW(EvalLoader(source, 6, 5, 3, AugmentOptions{8, false, 3}, 1, 2, false), Error);
  EXPECT_THROW(EvalLoader(source, 0, 10, 0, AugmentOptions{8, false, 3}, 1, 2, false), Error);
  EvalLoader whole(source, 0, 10, 10, AugmentOptions{8, false, 3}, 2, 4, false);
  ASSERT_TRUE(whole.next(batch));
  EXPECT_EQ(batch.images.size(0), 10);
  EXPECT_FALSE(whole.next(batch));
}

}  // namespace
}  // namespace dml
