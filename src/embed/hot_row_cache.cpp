// HotRowCache: find resident rows under the mutex, dequantize missing rows outside it, install them.
#include "quantkit/embed/hot_row_cache.hpp"

#include <chrono>
#include <cstring>

#include "quantkit/core/error.hpp"

namespace qk {

namespace {
std::int64_t capacity_of(const EmbeddingTable& table, const HotRowCacheOptions& options) {
  if (options.capacity_rows < 0 || options.capacity_bytes < 0)
    throw Error("hot-row cache: the capacity must not be negative");
  const std::int64_t rows =
      options.capacity_rows > 0 ? options.capacity_rows : options.capacity_bytes / (table.dim() * 4);
  return std::min(rows, table.rows());
}
std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

HotRowCache::HotRowCache(std::shared_ptr<const EmbeddingTable> table, const HotRowCacheOptions& options)
    : table_(std::move(table)),
      dim_(table_ ? table_->dim() : 0),
      capacity_(table_ ? capacity_of(*table_, options) : 0),
      policy_(options.policy, capacity_, table_ ? table_->rows() : 0, options.aging_window),
      map_(capacity_),
      slab_(static_cast<std::size_t>(capacity_ * dim_)) {
  if (options.policy == CachePolicy::kStatic) {
    table_->check_ids(options.static_rows, "static cache rows");
    for (const std::int64_t id : options.static_rows) {
      if (policy_.resident() == capacity_) break;
      if (map_.find(id) >= 0) continue;
      const auto slot = static_cast<std::int32_t>(policy_.resident());
      table_->dequantize_row(id, slab_.data() + std::int64_t{slot} * dim_);
      policy_.on_insert(slot, id);
      map_.insert(id, slot);
      ++stats_.rows_dequantized;
      stats_.bytes_read += static_cast<std::uint64_t>(table_->row_bytes());
      stats_.bytes_dequantized += static_cast<std::uint64_t>(dim_ * 4);
    }
  }
}

CachePolicy HotRowCache::policy() const { return policy_.policy(); }

std::int64_t HotRowCache::bytes() const {
  const std::lock_guard lock(mutex_);
  return static_cast<std::int64_t>(slab_.size() * sizeof(float)) + map_.bytes() + policy_.bytes();
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

bool HotRowCache::install(std::int64_t id, const float* row, bool force) {
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
  std::memcpy(slab_.data() + std::int64_t{choice.slot} * dim_, row, static_cast<std::size_t>(dim_) * 4);
  policy_.on_insert(choice.slot, id);
  map_.insert(id, choice.slot);
  return true;
}

void HotRowCache::resolve(const UniqueIds& unique, std::span<float* const> dst, BatchInfo& info) {
  thread_local std::vector<std::size_t> missing;
  missing.clear();
  {
    const std::lock_guard lock(mutex_);
    for (std::size_t u = 0; u < unique.ids.size(); ++u) policy_.record(unique.ids[u], unique.occurrences[u]);
    for (std::size_t u = 0; u < unique.ids.size(); ++u) {
      const std::int32_t slot = map_.find(unique.ids[u]);
      if (slot >= 0) {
        std::memcpy(dst[u], slab_.data() + std::int64_t{slot} * dim_, static_cast<std::size_t>(dim_) * 4);
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
  if (missing.empty()) {
    info.fill_ns = 0;
    return;
  }
  const std::int64_t start = now_ns();
  for (std::size_t m = 0; m < missing.size(); ++m) {
    if (m + kPrefetchDistance < missing.size())
      table_->prefetch_row(unique.ids[missing[m + kPrefetchDistance]]);
    table_->dequantize_row(unique.ids[missing[m]], dst[missing[m]]);
  }
  {
    const std::lock_guard lock(mutex_);
    for (const std::size_t u : missing) install(unique.ids[u], dst[u], false);
    info.fill_ns = now_ns() - start;
    stats_.rows_dequantized += missing.size();
    stats_.bytes_read += missing.size() * static_cast<std::uint64_t>(table_->row_bytes());
    stats_.bytes_dequantized += missing.size() * static_cast<std::uint64_t>(dim_ * 4);
    stats_.fill_ns += static_cast<std::uint64_t>(info.fill_ns);
  }
}

void HotRowCache::lookup(std::span<const std::int64_t> ids, std::span<float> out, BatchInfo* info) {
  if (static_cast<std::int64_t>(out.size()) != static_cast<std::int64_t>(ids.size()) * dim_)
    throw Error("hot-row cache lookup: the output holds " + std::to_string(out.size()) +
                " floats, expected " + std::to_string(ids.size()) + " x " + std::to_string(dim_));
  table_->check_ids(ids, "hot-row cache lookup");
  thread_local UniqueIds unique;
  thread_local std::vector<float*> dst;
  unique_ids(ids, unique);
  dst.resize(unique.ids.size());
  for (std::size_t u = 0; u < unique.ids.size(); ++u)
    dst[u] = out.data() + std::int64_t{unique.first_position[u]} * dim_;
  BatchInfo local;
  resolve(unique, dst, local);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int32_t first = unique.first_position[static_cast<std::size_t>(unique.inverse[i])];
    if (first != static_cast<std::int32_t>(i))
      std::memcpy(out.data() + static_cast<std::int64_t>(i) * dim_, out.data() + std::int64_t{first} * dim_,
                  static_cast<std::size_t>(dim_) * 4);
  }
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
  table_->check_ids(ids, "hot-row cache bag");
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
  table_->check_ids(ids, "hot-row cache warm-up");
  if (capacity_ == 0 || policy_.policy() == CachePolicy::kStatic) return 0;
  thread_local UniqueIds unique;
  thread_local std::vector<std::int64_t> missing;
  thread_local kernels::AlignedVector<float> rows;
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
  rows.resize(missing.size() * static_cast<std::size_t>(dim_));
  table_->dequantize_rows(missing, rows.data());
  std::int64_t installed = 0;
  const std::lock_guard lock(mutex_);
  for (std::size_t m = 0; m < missing.size(); ++m)
    installed += install(missing[m], rows.data() + static_cast<std::int64_t>(m) * dim_, true);
  stats_.rows_dequantized += missing.size();
  stats_.bytes_read += missing.size() * static_cast<std::uint64_t>(table_->row_bytes());
  stats_.bytes_dequantized += missing.size() * static_cast<std::uint64_t>(dim_ * 4);
  stats_.prefetched_rows += static_cast<std::uint64_t>(installed);
  return installed;
}

}  // namespace qk
