#pragma once
// Private: worker threads that produce items index = first, first+1, ... (up to `end`, exclusive) ahead
// of one consumer and hand them out strictly in index order.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "dml/pipeline/batch.h"

namespace dml {

class OrderedPrefetcher {
 public:
  // make(index, stop) builds item `index`; it may return early (anything) once `stop` is true, the result
  // is then discarded. It runs on the worker threads, several at once.
  using Make = std::function<Batch(uint64_t index, const std::atomic<bool>& stop)>;

  // At most `window` items are claimed beyond the last one handed out (in progress or ready).
  OrderedPrefetcher(Make make, uint64_t first, uint64_t end, int workers, int window);
  ~OrderedPrefetcher();  // stops and joins the workers
  OrderedPrefetcher(const OrderedPrefetcher&) = delete;
  OrderedPrefetcher& operator=(const OrderedPrefetcher&) = delete;

  // Item next_index(); false once index == end. Rethrows the first worker exception.
  bool next(Batch& out);

 private:
  void worker_loop();

  Make make_;
  const uint64_t end_;
  const uint64_t window_;
  std::mutex mutex_;
  std::condition_variable work_cv_;   // workers wait for room in the window
  std::condition_variable ready_cv_;  // the consumer waits for its item
  uint64_t next_claim_;
  uint64_t next_out_;
  std::map<uint64_t, Batch> ready_;
  std::exception_ptr error_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace dml
