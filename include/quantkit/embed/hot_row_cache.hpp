// A hot-row cache in front of an EmbeddingTable: the most useful rows, dequantized to float32, in one
// contiguous 64-byte aligned slab (capacity x dim floats), found through an id -> slot open-addressing
// map, replaced by LRU, aging LFU or a static top-k set (embed/cache_policy.hpp).
//
// Threading contract: lookup, embedding_bag, warm, stats and contains may be called from any number of
// threads at once (the prefetch worker is one of them). One mutex guards the map, the policy, the slab
// and the statistics, and is held only to find rows, copy resident rows out and install new rows; the
// table reads and dequantization of missing rows run outside it (the table is immutable). A row being
// installed is copied in under the mutex, so a reader never sees half a row. Results do not depend on
// the interleaving: a row's floats are the same whether they come from the slab or the table.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "quantkit/embed/cache_policy.hpp"
#include "quantkit/embed/embedding_table.hpp"
#include "quantkit/embed/row_slot_map.hpp"
#include "quantkit/embed/sparse_lookup.hpp"
#include "quantkit/kernels/aligned_vector.hpp"

namespace qk {

struct HotRowCacheOptions {
  CachePolicy policy = CachePolicy::kLfu;
  std::int64_t capacity_rows = 0;   // used when > 0
  std::int64_t capacity_bytes = 0;  // otherwise: slab bytes / (dim * 4) rows
  std::int64_t aging_window = 0;    // LFU; 0 = 10 x capacity, at least rows / 16
  // Static policy: rows to load, most important first (e.g. top_rows() of calibration ids); the first
  // capacity of them are loaded at construction.
  std::vector<std::int64_t> static_rows;
};

struct CacheStats {
  std::uint64_t lookups = 0;  // ids looked up (bag members included)
  std::uint64_t hits = 0;     // ids served without reading the table (resident, or a repeat
                              // of a row already fetched for the same batch)
  std::uint64_t misses = 0;   // unique rows per batch read from the table
  std::uint64_t evictions = 0;
  std::uint64_t bypassed = 0;           // misses the policy did not admit
  std::uint64_t rows_dequantized = 0;   // by lookups, bags and warm-ups
  std::uint64_t bytes_read = 0;         // from the table, as stored
  std::uint64_t bytes_dequantized = 0;  // float32 bytes produced from the table
  std::uint64_t prefetched_rows = 0;    // installed by warm()
  std::uint64_t fill_ns = 0;            // time lookups and bags spent fetching missing rows
  double hit_rate() const { return lookups ? static_cast<double>(hits) / static_cast<double>(lookups) : 0.0; }
};

// What one lookup or bag call saw.
struct BatchInfo {
  std::int64_t ids = 0;
  std::int64_t unique = 0;
  std::int64_t resident_at_start = 0;  // unique rows already in the cache when the call began
  std::int64_t fill_ns = 0;            // time spent fetching the missing rows
};

class HotRowCache {
 public:
  HotRowCache(std::shared_ptr<const EmbeddingTable> table, const HotRowCacheOptions& options);
  HotRowCache(const HotRowCache&) = delete;
  HotRowCache& operator=(const HotRowCache&) = delete;

  const EmbeddingTable& table() const { return *table_; }
  std::int64_t capacity_rows() const { return capacity_; }
  CachePolicy policy() const;
  // Slab + map + policy state, the memory the cache adds to the table.
  std::int64_t bytes() const;
  std::int64_t resident_rows() const;
  bool contains(std::int64_t id) const;

  // out: ids.size() x dim. Throws (before touching anything) if an id is out of range.
  void lookup(std::span<const std::int64_t> ids, std::span<float> out, BatchInfo* info = nullptr);
  void embedding_bag(std::span<const std::int64_t> ids, std::span<const std::int64_t> offsets,
                     const BagOptions& options, std::span<float> out, BatchInfo* info = nullptr);
  // Installs the missing rows of ids that the policy admits, without producing output and without
  // counting them as lookups (the prefetch worker's call). Returns the number of rows installed.
  std::int64_t warm(std::span<const std::int64_t> ids);

  CacheStats stats() const;
  void reset_stats();

 private:
  // Writes each unique row's floats to dst[u] (resident rows from the slab, the rest from the table)
  // and admits the missing ones.
  void resolve(const UniqueIds& unique, std::span<float* const> dst, BatchInfo& info);
  bool install(std::int64_t id, const float* row, bool force);  // under the mutex

  std::shared_ptr<const EmbeddingTable> table_;
  std::int64_t dim_;
  std::int64_t capacity_;
  mutable std::mutex mutex_;
  CacheReplacement policy_;
  RowSlotMap map_;
  kernels::AlignedVector<float> slab_;
  CacheStats stats_;
};

}  // namespace qk
