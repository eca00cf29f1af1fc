// The prefetch worker and the successor/frequency predictor.
#include "quantkit/embed/prefetcher.hpp"

#include <algorithm>
#include <chrono>

#include "quantkit/core/error.hpp"

namespace qk {

Prefetcher::Prefetcher(HotRowCache& cache) : cache_(cache), worker_([this] { run(); }) {}

Prefetcher::~Prefetcher() {
  {
    const std::lock_guard lock(mutex_);
    stop_ = true;
  }
  work_.notify_all();
  worker_.join();
}

void Prefetcher::prefetch(std::span<const std::int64_t> ids) {
  {
    const std::lock_guard lock(mutex_);
    queue_.emplace_back(ids.begin(), ids.end());
  }
  work_.notify_one();
}

void Prefetcher::wait() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return queue_.empty() && !busy_; });
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

Prefetcher::Stats Prefetcher::stats() const {
  const std::lock_guard lock(mutex_);
  return stats_;
}

void Prefetcher::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    work_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop requested and nothing left
    std::vector<std::int64_t> ids = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    const auto start = std::chrono::steady_clock::now();
    std::int64_t installed = 0;
    std::exception_ptr error;
    try {
      installed = cache_.warm(ids);
    } catch (...) {
      error = std::current_exception();
    }
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
            .count();
    lock.lock();
    busy_ = false;
    if (error && !error_) error_ = error;
    ++stats_.batches;
    stats_.rows_installed += installed;
    stats_.busy_ns += ns;
    if (queue_.empty()) idle_.notify_all();
  }
}

RowPredictor::RowPredictor(std::int64_t rows) {
  if (rows <= 0) throw Error("row predictor: the table needs at least one row");
  successor_.assign(static_cast<std::size_t>(rows), -1);
  frequency_.assign(static_cast<std::size_t>(rows), 0);
}

void RowPredictor::observe(std::span<const std::int64_t> batch) {
  const auto rows = static_cast<std::int64_t>(successor_.size());
  for (const std::int64_t id : batch) {
    if (id < 0 || id >= rows) throw Error("row predictor: id " + std::to_string(id) + " is out of range");
    if (last_ >= 0) successor_[static_cast<std::size_t>(last_)] = id;
    std::uint32_t& f = frequency_[static_cast<std::size_t>(id)];
    if (f < UINT32_MAX) ++f;
    last_ = id;
  }
}

std::vector<std::int64_t> RowPredictor::propose(std::span<const std::int64_t> batch,
                                                std::size_t max_rows) const {
  std::vector<std::int64_t> candidates;
  candidates.reserve(batch.size());
  for (const std::int64_t id : batch) {
    if (id < 0 || id >= static_cast<std::int64_t>(successor_.size())) continue;
    const std::int64_t next = successor_[static_cast<std::size_t>(id)];
    if (next >= 0) candidates.push_back(next);
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  std::stable_sort(candidates.begin(), candidates.end(), [this](std::int64_t a, std::int64_t b) {
    return frequency_[static_cast<std::size_t>(a)] > frequency_[static_cast<std::size_t>(b)];
  });
  if (candidates.size() > max_rows) candidates.resize(max_rows);
  return candidates;
}

}  // namespace qk
