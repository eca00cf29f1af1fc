// Predictive prefetching for the hot-row cache: a background worker installs the rows of the next
// batch while the current one is consumed, and a predictor proposes rows when the next batch is not
// known yet.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "quantkit/embed/hot_row_cache.hpp"

namespace qk {

// One worker thread per Prefetcher. prefetch() copies the ids, queues them and returns at once; the
// worker calls cache.warm() on each queued batch in order. wait() returns when the queue is drained and
// rethrows the first error the worker met. The destructor drains the queue and joins.
class Prefetcher {
 public:
  explicit Prefetcher(HotRowCache& cache);
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;
  ~Prefetcher();

  void prefetch(std::span<const std::int64_t> ids);
  void wait();

  struct Stats {
    std::int64_t batches = 0;
    std::int64_t rows_installed = 0;
    std::int64_t busy_ns = 0;  // worker time spent warming
  };
  Stats stats() const;

 private:
  void run();

  HotRowCache& cache_;
  mutable std::mutex mutex_;
  std::condition_variable work_, idle_;
  std::deque<std::vector<std::int64_t>> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  Stats stats_;
  std::thread worker_;  // last: started after everything it uses exists
};

// Proposes rows for the next batch from what the stream has shown: each id's most recent successor
// (the id that followed it, across batch boundaries) ranked by how often that successor has been seen.
// Memory: 12 bytes per table row. Not thread-safe.
class RowPredictor {
 public:
  explicit RowPredictor(std::int64_t rows);
  // Learns successors and frequencies from a batch (ids in stream order). Ids must be in range.
  void observe(std::span<const std::int64_t> batch);
  // Up to max_rows distinct ids likely to appear after `batch`, most frequent first.
  std::vector<std::int64_t> propose(std::span<const std::int64_t> batch, std::size_t max_rows) const;

 private:
  std::vector<std::int64_t> successor_;
  std::vector<std::uint32_t> frequency_;
  std::int64_t last_ = -1;
};

}  // namespace qk
