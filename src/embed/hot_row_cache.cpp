// HotRowCache: find resident rows and dequantize them under the mutex, fetch and dequantize missing rows
// outside it, install their stored bytes.
#include "quantkit/embed/hot_row_cache.hpp"

#include <chrono>
#include <cstring>
#include <exception>

#include "quantkit/core/error.hpp"

namespace qk {

namespace {
std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
std::int64_t capacity_of(const RowSource& source, const HotRowCacheOptions& options) {
  if (options.capacity_rows < 0 || options.capacity_bytes < 0)
    throw Error("hot-row cache: the capacity must not be negative");
  if (options.capacity_rows > 0) return std::min(options.capacity_rows, source.rows());
  return HotRowCache::capacity_for_budget(source, options.policy, options.capacity_bytes);
}
// Starts loading a row's cache lines (rows of a big table in RAM are cold; overlapping their loads hides
// most of a memory latency per row).
void prefetch_bytes(const std::uint8_t* row, std::int64_t bytes) {
  for (std::int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(row + offset);
  __builtin_prefetch(row + bytes - 1);
}
}  // namespace

// Gives a fetcher back to the cache when a call ends normally; one whose call ended by an exception is
// dropped (a failed read may have left it in a state no later call should inherit).
struct HotRowCache::Lease {
  HotRowCache& cache;
  std::unique_ptr<RowFetcher> fetcher;
  int exceptions_at_start;
  explicit Lease(HotRowCache& c)
      : cache(c), fetcher(c.take_fetcher()), exceptions_at_start(std::uncaught_exceptions()) {}
  ~Lease() {
    if (std::uncaught_exceptions() == exceptions_at_start) cache.give_back(std::move(fetcher));
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
};

std::int64_t HotRowCache::bytes_for(const RowSource& source, CachePolicy policy, std::int64_t capacity) {
  return capacity * source.row_bytes() + RowSlotMap::bytes_for(capacity) +
         CacheReplacement::bytes_for(policy, capacity, source.rows());
}

std::int64_t HotRowCache::capacity_for_budget(const RowSource& source, CachePolicy policy,
                                              std::int64_t budget_bytes) {
  if (budget_bytes < 0) throw Error("hot-row cache: the byte budget must not be negative");
  // bytes_for grows with the capacity: the largest capacity within the budget, by bisection.
  std::int64_t lo = 0, hi = std::min<std::int64_t>(source.rows(), INT32_MAX);
  if (bytes_for(source, policy, hi) <= budget_bytes) return hi;
  while (hi - lo > 1) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    (bytes_for(source, policy, mid) <= budget_bytes ? lo : hi) = mid;
  }
  if (budget_bytes > 0 && lo == 0)
    throw Error("hot-row cache: a budget of " + std::to_string(budget_bytes) + " bytes holds no row of " +
                source.name() + " (one row takes " + std::to_string(bytes_for(source, policy, 1)) +
                " bytes with " + to_string(policy) + "'s state" +
                (policy == CachePolicy::kLfu ? ", 4 bytes per table row" : "") + ")");
  return lo;
}

HotRowCache::HotRowCache(std::shared_ptr<const EmbeddingTable> table, const HotRowCacheOptions& options)
    : HotRowCache(std::make_shared<TableRowSource>(std::move(table)), options) {}

HotRowCache::HotRowCache(std::shared_ptr<const RowSource> source, const HotRowCacheOptions& options)
    : source_(source ? std::move(source) : throw Error("hot-row cache: no row source")),
      dim_(source_->dim()),
      row_bytes_(source_->row_bytes()),
      storage_(source_->storage()),
      capacity_(capacity_of(*source_, options)),
      policy_(options.policy, capacity_, source_->rows(), options.aging_window),
      map_(capacity_),
      slab_(static_cast<std::size_t>(capacity_ * row_bytes_)) {
  if (options.policy != CachePolicy::kStatic) return;
  source_->check_ids(options.static_rows, "static cache rows");
  std::vector<std::int64_t> load;
  for (const std::int64_t id : options.static_rows) {
    if (static_cast<std::int64_t>(load.size()) == capacity_) break;
    if (map_.find(id) >= 0) continue;
    map_.insert(id, static_cast<std::int32_t>(load.size()));  // placeholder: de-duplicates the list
    load.push_back(id);
  }
  // In chunks: one fetch of every row would size a disk fetcher's buffer for the whole cache.
  constexpr std::size_t kChunk = 256;
  std::vector<const std::uint8_t*> rows(std::min(load.size(), kChunk));
  const Lease lease(*this);
  for (std::size_t first = 0; first < load.size(); first += kChunk) {
    const std::size_t n = std::min(kChunk, load.size() - first);
    const std::span<const std::int64_t> chunk(load.data() + first, n);
    stats_.source_bytes_read +=
        static_cast<std::uint64_t>(lease.fetcher->fetch(chunk, std::span(rows).first(n)));
    for (std::size_t k = 0; k < n; ++k) {
      const auto slot = static_cast<std::int32_t>(first + k);
      std::memcpy(slot_row(slot), rows[k], static_cast<std::size_t>(row_bytes_));
      policy_.on_insert(slot, load[first + k]);
    }
  }
  stats_.rows_dequantized += load.size();
  stats_.bytes_read += load.size() * static_cast<std::uint64_t>(row_bytes_);
}

CachePolicy HotRowCache::policy() const { return policy_.policy(); }

std::int64_t HotRowCache::bytes() const {
  const std::lock_guard lock(mutex_);
  return static_cast<std::int64_t>(slab_.size()) + map_.bytes() + policy_.bytes();
}

std::int64_t HotRowCache::resident_rows() const {
  const std::lock_guard lock(mutex_);
  return policy_.resident();
}

bool HotRowCache::contains(std::int64_t id) const {
  const std::lock_guard lock(mutex_);
  return map_.find(id) >= 0;
}

CacheStats HotRowCache::stats() const {
  const std::lock_guard lock(mutex_);
  return stats_;
}

void HotRowCache::reset_stats() {
  const std::lock_guard lock(mutex_);
  stats_ = CacheStats{};
}

std::unique_ptr<RowFetcher> HotRowCache::take_fetcher() {
  {
    const std::lock_guard lock(fetchers_mutex_);
    if (!idle_fetchers_.empty()) {
      std::unique_ptr<RowFetcher> f = std::move(idle_fetchers_.back());
      idle_fetchers_.pop_back();
      return f;
    }
  }
  return source_->fetcher();
}

void HotRowCache::give_back(std::unique_ptr<RowFetcher> fetcher) {
  if (!fetcher) return;
  const std::lock_guard lock(fetchers_mutex_);
  idle_fetchers_.push_back(std::move(fetcher));
}

bool HotRowCache::install(std::int64_t id, const std::uint8_t* row, bool force) {
  if (map_.find(id) >= 0) return false;  // another thread installed it meanwhile
  const CacheReplacement::Choice choice = policy_.choose_slot(id, force);
  if (choice.slot < 0) {
    ++stats_.bypassed;
    return false;
  }
  if (choice.evicted_id >= 0) {
    map_.erase(choice.evicted_id);
    ++stats_.evictions;
  }
  std::memcpy(slot_row(choice.slot), row, static_cast<std::size_t>(row_bytes_));
  policy_.on_insert(choice.slot, id);
  map_.insert(id, choice.slot);
  return true;
}

void HotRowCache::resolve(const UniqueIds& unique, std::span<float* const> dst, BatchInfo& info) {
  thread_local std::vector<std::size_t> missing;
  thread_local std::vector<std::int64_t> missing_ids;
  thread_local std::vector<const std::uint8_t*> fetched;
  missing.clear();
  {
    const std::lock_guard lock(mutex_);
    for (std::size_t u = 0; u < unique.ids.size(); ++u) policy_.record(unique.ids[u], unique.occurrences[u]);
    for (std::size_t u = 0; u < unique.ids.size(); ++u) {
      const std::int32_t slot = map_.find(unique.ids[u]);
      if (slot >= 0) {
        dequantize_stored_row(storage_, dim_, slot_row(slot), dst[u]);
        policy_.on_hit(slot);
        stats_.hits += unique.occurrences[u];
      } else {
        missing.push_back(u);
        stats_.hits += unique.occurrences[u] - 1;  // repeats are served from this batch's fetch
      }
    }
    stats_.lookups += unique.inverse.size();
    stats_.misses += missing.size();
  }
  info.ids = static_cast<std::int64_t>(unique.inverse.size());
  info.unique = static_cast<std::int64_t>(unique.ids.size());
  info.resident_at_start = info.unique - static_cast<std::int64_t>(missing.size());
  info.fill_ns = 0;
  if (missing.empty()) return;
  const std::int64_t start = now_ns();
  missing_ids.resize(missing.size());
  fetched.resize(missing.size());
  for (std::size_t m = 0; m < missing.size(); ++m) missing_ids[m] = unique.ids[missing[m]];
  const Lease lease(*this);
  const std::int64_t read = lease.fetcher->fetch(missing_ids, fetched);
  for (std::size_t m = 0; m < missing.size(); ++m) {
    if (m + kPrefetchDistance < missing.size()) prefetch_bytes(fetched[m + kPrefetchDistance], row_bytes_);
    dequantize_stored_row(storage_, dim_, fetched[m], dst[missing[m]]);
  }
  const std::lock_guard lock(mutex_);
  for (std::size_t m = 0; m < missing.size(); ++m) install(missing_ids[m], fetched[m], false);
  info.fill_ns = now_ns() - start;
  stats_.rows_dequantized += missing.size();
  stats_.bytes_read += missing.size() * static_cast<std::uint64_t>(row_bytes_);
  stats_.bytes_dequantized += missing.size() * static_cast<std::uint64_t>(dim_ * 4);
  stats_.source_bytes_read += static_cast<std::uint64_t>(read);
  stats_.fill_ns += static_cast<std::uint64_t>(info.fill_ns);
}

void HotRowCache::lookup(std::span<const std::int64_t> ids, std::span<float> out, BatchInfo* info) {
  if (static_cast<std::int64_t>(out.size()) != static_cast<std::int64_t>(ids.size()) * dim_)
    throw Error("hot-row cache lookup: the output holds " + std::to_string(out.size()) +
                " floats, expected " + std::to_string(ids.size()) + " x " + std::to_string(dim_));
  source_->check_ids(ids, "hot-row cache lookup");
  thread_local UniqueIds unique;
  thread_local std::vector<float*> dst;
  unique_ids(ids, unique);
  dst.resize(unique.ids.size());
  for (std::size_t u = 0; u < unique.ids.size(); ++u)
    dst[u] = out.data() + std::int64_t{unique.first_position[u]} * dim_;
  BatchInfo local;
  resolve(unique, dst, local);
  copy_repeats(unique, dim_, out.data());
  if (info) *info = local;
}

void HotRowCache::embedding_bag(std::span<const std::int64_t> ids, std::span<const std::int64_t> offsets,
                                const BagOptions& options, std::span<float> out, BatchInfo* info) {
  const std::int64_t bags =
      check_bag_offsets(offsets, static_cast<std::int64_t>(ids.size()), options.include_last_offset);
  // Refuse a wrong output before the batch touches the cache or its statistics.
  if (static_cast<std::int64_t>(out.size()) != bags * dim_)
    throw Error("hot-row cache bag: the output holds " + std::to_string(out.size()) + " floats, expected " +
                std::to_string(bags) + " x " + std::to_string(dim_));
  source_->check_ids(ids, "hot-row cache bag");
  thread_local UniqueIds unique;
  thread_local kernels::AlignedVector<float> rows;
  thread_local std::vector<float*> dst;
  unique_ids(ids, unique);
  rows.resize(unique.ids.size() * static_cast<std::size_t>(dim_));
  dst.resize(unique.ids.size());
  for (std::size_t u = 0; u < unique.ids.size(); ++u)
    dst[u] = rows.data() + static_cast<std::int64_t>(u) * dim_;
  BatchInfo local;
  resolve(unique, dst, local);
  accumulate_bags(unique, rows.data(), dim_, offsets, options, out);
  if (info) *info = local;
}

std::int64_t HotRowCache::warm(std::span<const std::int64_t> ids) {
  source_->check_ids(ids, "hot-row cache warm-up");
  if (capacity_ == 0 || policy_.policy() == CachePolicy::kStatic) return 0;
  thread_local UniqueIds unique;
  thread_local std::vector<std::int64_t> missing;
  thread_local std::vector<const std::uint8_t*> fetched;
  unique_ids(ids, unique);
  missing.clear();
  {
    const std::lock_guard lock(mutex_);
    for (const std::int64_t id : unique.ids) {
      if (map_.find(id) < 0) missing.push_back(id);
    }
  }
  // Never more rows than the cache holds: the first ones would only be evicted by the last.
  if (static_cast<std::int64_t>(missing.size()) > capacity_)
    missing.resize(static_cast<std::size_t>(capacity_));
  fetched.resize(missing.size());
  const Lease lease(*this);
  const std::int64_t read = lease.fetcher->fetch(missing, fetched);
  std::int64_t installed = 0;
  const std::lock_guard lock(mutex_);
  for (std::size_t m = 0; m < missing.size(); ++m) installed += install(missing[m], fetched[m], true);
  stats_.rows_dequantized += missing.size();
  stats_.bytes_read += missing.size() * static_cast<std::uint64_t>(row_bytes_);
  stats_.source_bytes_read += static_cast<std::uint64_t>(read);
  stats_.prefetched_rows += static_cast<std::uint64_t>(installed);
  return installed;
}

}  // namespace qk
