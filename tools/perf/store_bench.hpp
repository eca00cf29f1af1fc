// The measurement behind `qtool embed --store`: an id stream replayed in batches, one thread, through the
// tiers of a table larger than memory, each path in its own child process so that its resident memory
// (peak RSS from wait4) is its own:
//   cached        the RAM cache (stored format, within the byte budget) in front of the row store,
//                 reading missing rows with direct I/O; starts empty, warmed by the stream's first batches
//   uncached      every unique row of every batch read from the store with direct I/O
//   fp32 store    (optional) the same cache and byte budget in front of a float32 store
//   fp32 mmap     (optional) a float32 .npy memory-mapped, rows memcpy'd per id: first from a cold page
//                 cache (its pages dropped with posix_fadvise first), then a second, warm pass. The OS page
//                 cache it fills is not bounded by any budget.
//   prefetch      (optional) a pipeline of lookup + dense layer per batch, without and with the prefetch
//                 worker reading the next batch's missing rows from disk during the current batch.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "quantkit/embed/cache_policy.hpp"
#include "quantkit/io/block_reader.hpp"

namespace qk::perf {

struct StoreBenchOptions {
  std::string store;             // the row store the cache runs on (any storage)
  std::string fp32_store;        // "" or a float32 row store (or .npy), run with the same budget in bytes
  std::string fp32_table;        // "" or a float32 .npy read through mmap
  std::int64_t ram_budget = 0;   // bytes, when > 0 ...
  double cache_fraction = 0.05;  // ... else room for this share of the store's rows
  CachePolicy policy = CachePolicy::kLfu;
  std::int64_t batch = 256;
  // The first batches run through the caches untimed, so that they are measured in their steady state
  // (a serving cache runs for days); every path then times the same remaining ids. The mmap path's page
  // cache is dropped after the warm-up, since it is timed from a cold page cache by definition.
  std::int64_t warmup_batches = 0;
  io::BlockReaderOptions io;
  bool prefetch = false;
  std::int64_t compute_dim = 0;  // dense layer width of the prefetch pipeline (0: the table's dim)
};

struct StorePathResult {
  double rows_per_s = 0;
  double seconds = 0;
  double hit_rate = 0;
  std::int64_t peak_rss_bytes = 0;   // the child's peak resident memory
  std::int64_t start_rss_bytes = 0;  // its resident memory before the path began (process baseline)
  std::int64_t disk_bytes_read = 0;
  std::int64_t cache_rows = 0, cache_bytes = 0;
};

struct StoreBenchResult {
  std::int64_t rows = 0, dim = 0, ids = 0, batches = 0;  // the measured ids (after the warm-up)
  std::int64_t warmup_ids = 0;
  std::int64_t store_bytes = 0;
  std::string storage, io_backend, io_fallback_reason;
  bool direct_io = false;
  std::int64_t ram_budget_bytes = 0;
  double oracle_hit_rate = 0, oracle_preloaded_hit_rate = 0;
  StorePathResult cached, uncached, fp32_store, fp32_mmap_cold, fp32_mmap_warm;
  std::int64_t fp32_mmap_page_cache_bytes = 0;  // how much the OS page cache grew under the cold pass
  // Prefetch pipeline (zeros when off).
  double read_us_per_batch = 0;    // without prefetch: lookup time spent fetching missing rows
  double lookup_us_per_batch = 0;  // without prefetch
  double lookup_us_per_batch_prefetch = 0;
  double compute_us_per_batch = 0;
  double prefetch_coverage = 0;         // share of a batch's unique rows resident when it starts
  double prefetch_hidden_fraction = 0;  // (lookup time saved) / (read time without prefetch)
};

StoreBenchResult run_store_bench(const StoreBenchOptions& options, std::span<const std::int64_t> ids,
                                 const std::function<void(double)>& progress = {});

}  // namespace qk::perf
