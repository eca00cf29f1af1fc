// The pool behind parallel_for: workers are started on first use and kept, because starting a thread
// costs tens of microseconds, the order of a whole 4096x4096 INT4 GEMV.
#include "quantkit/kernels/parallel.hpp"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace qk::kernels {

namespace {

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  // Runs parts[1..] on workers and parts[0] here.
  void run(const std::vector<std::pair<std::int64_t, std::int64_t>>& parts,
           const std::function<void(std::int64_t, std::int64_t)>& fn) {
    std::lock_guard serial(serial_);
    const std::size_t helpers = parts.size() - 1;
    {
      std::lock_guard lock(mutex_);
      while (workers_.size() < helpers) {
        const std::size_t index = workers_.size();
        workers_.emplace_back([this, index] { work(index); });
      }
      parts_ = &parts;
      fn_ = &fn;
      pending_ = helpers;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    std::exception_ptr mine;
    try {
      fn(parts[0].first, parts[0].second);
    } catch (...) {
      mine = std::current_exception();
    }
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    parts_ = nullptr;
    fn_ = nullptr;
    if (mine) std::rethrow_exception(mine);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void work(std::size_t index) {
    std::uint64_t seen = 0;
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      // Worker `index` takes part index + 1; workers beyond this job's parts sit it out.
      if (parts_ == nullptr || index + 1 >= parts_->size()) continue;
      const auto part = (*parts_)[index + 1];
      const auto* fn = fn_;
      lock.unlock();
      std::exception_ptr failure;
      try {
        (*fn)(part.first, part.second);
      } catch (...) {
        failure = std::current_exception();
      }
      lock.lock();
      if (failure && !error_) error_ = failure;
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex serial_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::vector<std::pair<std::int64_t, std::int64_t>>* parts_ = nullptr;
  const std::function<void(std::int64_t, std::int64_t)>* fn_ = nullptr;
  std::size_t pending_ = 0;
  std::uint64_t generation_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void parallel_for(std::int64_t n, int threads, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(grain, 1);
  const std::int64_t units = (n + grain - 1) / grain;
  const std::int64_t count = std::clamp<std::int64_t>(threads, 1, units);
  if (count <= 1) {
    fn(0, n);
    return;
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> parts;
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t begin = std::min(n, units * i / count * grain);
    const std::int64_t end = std::min(n, units * (i + 1) / count * grain);
    if (end > begin) parts.emplace_back(begin, end);
  }
  pool().run(parts, fn);
}

}  // namespace qk::kernels
