// The RAM tier in front of a slower row source (embed/row_source.hpp: a row store on disk, or a table in
// RAM): the most useful rows in their stored format (int8/int4 codes + float16 scale and bias, or fp16 /
// fp32) in one contiguous 64-byte aligned slab of capacity x row_bytes bytes, found through an id -> slot
// open-addressing map, replaced by LRU, aging LFU with TinyLFU admission, or a static top-k set
// (embed/cache_policy.hpp). A hit dequantizes straight from the slab into the output with the SIMD row
// dequantizer, so an INT8 cache holds ~4x the rows of a float32 copy in the same bytes.
//
// Sizing: capacity_rows, or a byte budget (capacity_bytes) that covers everything the cache allocates:
// the slab, the map and the policy's state (LFU counts 4 bytes per table row). bytes() reports it.
//
// Threading contract: lookup, embedding_bag, warm, stats and contains may be called from any number of
// threads at once (the prefetch worker is one of them). One mutex guards the map, the policy, the slab
// and the statistics, and is held only to find rows, dequantize resident rows out and install new rows;
// reading missing rows from the source (through a per-thread fetcher) and dequantizing them run outside
// it. A row being installed is copied in under the mutex, so a reader never sees half a row. Results do
// not depend on the interleaving: a row's floats are the same whether they come from the slab, the disk
// or the table (cached == uncached == in-RAM, bit for bit).
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
#include "quantkit/embed/row_source.hpp"
#include "quantkit/embed/sparse_lookup.hpp"
#include "quantkit/kernels/aligned_vector.hpp"

namespace qk {

struct HotRowCacheOptions {
  CachePolicy policy = CachePolicy::kLfu;
  std::int64_t capacity_rows = 0;   // used when > 0
  std::int64_t capacity_bytes = 0;  // otherwise: the most rows whose slab + map + policy fit these bytes
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
  std::uint64_t rows_dequantized = 0;   // rows fetched from the source by lookups, bags and warm-ups
  std::uint64_t bytes_read = 0;         // their bytes as stored
  std::uint64_t bytes_dequantized = 0;  // float32 bytes the lookups produced from fetched rows
  std::uint64_t source_bytes_read = 0;  // bytes the source read from its medium (disk blocks; 0 in RAM)
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
  HotRowCache(std::shared_ptr<const RowSource> source, const HotRowCacheOptions& options);
  // In front of a table in RAM (a TableRowSource).
  HotRowCache(std::shared_ptr<const EmbeddingTable> table, const HotRowCacheOptions& options);
  HotRowCache(const HotRowCache&) = delete;
  HotRowCache& operator=(const HotRowCache&) = delete;

  // The most rows a cache of `policy` over `source` can hold within budget_bytes (slab + map + policy).
  static std::int64_t capacity_for_budget(const RowSource& source, CachePolicy policy,
                                          std::int64_t budget_bytes);
  // The bytes a cache of `capacity` rows allocates (what bytes() will report).
  static std::int64_t bytes_for(const RowSource& source, CachePolicy policy, std::int64_t capacity);

  const RowSource& source() const { return *source_; }
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
  // Writes each unique row's floats to dst[u] (resident rows from the slab, the rest from the source)
  // and admits the missing ones.
  void resolve(const UniqueIds& unique, std::span<float* const> dst, BatchInfo& info);
  bool install(std::int64_t id, const std::uint8_t* row, bool force);  // under the mutex
  std::uint8_t* slot_row(std::int32_t slot) { return slab_.data() + std::int64_t{slot} * row_bytes_; }
  // A fetcher for this call: taken from the idle ones, or a new one; given back by the Lease.
  struct Lease;
  std::unique_ptr<RowFetcher> take_fetcher();
  void give_back(std::unique_ptr<RowFetcher> fetcher);

  std::shared_ptr<const RowSource> source_;
  std::int64_t dim_;
  std::int64_t row_bytes_;
  EmbeddingStorage storage_;
  std::int64_t capacity_;
  mutable std::mutex mutex_;
  CacheReplacement policy_;
  RowSlotMap map_;
  kernels::AlignedVector<std::uint8_t> slab_;
  CacheStats stats_;
  std::mutex fetchers_mutex_;
  std::vector<std::unique_ptr<RowFetcher>> idle_fetchers_;
};

}  // namespace qk
