#include "pipeline/ordered_prefetcher.h"

#include "dml/util/error.h"

namespace dml {

OrderedPrefetcher::OrderedPrefetcher(Make make, uint64_t first, uint64_t end, int workers, int window)
    : make_(std::move(make)), end_(end), window_(static_cast<uint64_t>(window)), next_claim_(first),
      next_out_(first) {
  threads_.reserve(static_cast<size_t>(workers));
  try {
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { worker_loop(); });
  } catch (...) {
    stop_ = true;
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
    throw;
  }
}

OrderedPrefetcher::~OrderedPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void OrderedPrefetcher::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    work_cv_.wait(lock, [this] {
      return stop_ || error_ || (next_claim_ < end_ && next_claim_ - next_out_ < window_);
    });
    if (stop_ || error_) return;
    const uint64_t index = next_claim_++;
    lock.unlock();
    try {
      Batch item = make_(index, stop_);
      lock.lock();
      if (!stop_) ready_.emplace(index, std::move(item));
    } catch (...) {
      if (!lock.owns_lock()) lock.lock();
      if (!error_) error_ = std::current_exception();
    }
    ready_cv_.notify_all();
    work_cv_.notify_all();  // after an error the other workers leave too
  }
}

bool OrderedPrefetcher::next(Batch& out) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (error_) std::rethrow_exception(error_);
  if (next_out_ >= end_) return false;
  ready_cv_.wait(lock, [this] { return error_ || ready_.count(next_out_) > 0; });
  if (error_) std::rethrow_exception(error_);
  auto it = ready_.find(next_out_);
  out = std::move(it->second);
  ready_.erase(it);
  ++next_out_;
  lock.unlock();
  work_cv_.notify_all();
  return true;
}

}  // namespace dml
