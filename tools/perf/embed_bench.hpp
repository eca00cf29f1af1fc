// The measurement behind `qtool embed` and bench/bench_embed: an id stream replayed, single-threaded, in
// batches through (1) the hot-row cache in front of the table, (2) the uncached sparse path on the same
// table and (3) a plain float32 gather (memcpy of each id's row, no de-duplication), each timed as the
// median of `repeats` passes over the whole stream; the cached pass starts from an empty cache each time.
// With prefetch on, a pipeline with a dense layer after every batch runs twice (without and with the
// prefetch worker) to measure how much of the cache-fill time the worker hides.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "quantkit/embed/cache_policy.hpp"
#include "quantkit/embed/embedding_table.hpp"

namespace qk::perf {

struct EmbedBenchOptions {
  std::int64_t cache_rows = 0;   // used when > 0
  double cache_fraction = 0.05;  // otherwise: this share of the table's rows
  CachePolicy policy = CachePolicy::kLfu;
  std::int64_t batch = 512;   // ids per call
  std::int64_t bag_size = 1;  // 1: lookups; K > 1: sum bags of K consecutive ids
  int repeats = 3;
  double static_profile_fraction = 0.1;  // static policy: top rows of this leading share of the stream
  bool prefetch = false;
  bool predict = false;          // prefetch what RowPredictor proposes instead of the known next batch
  std::int64_t compute_dim = 0;  // width of the dense layer after each batch (0: the table's dim)
};

struct EmbedBenchResult {
  std::int64_t ids = 0, batches = 0, cache_rows = 0;
  std::int64_t table_bytes = 0, fp32_table_bytes = 0, cache_bytes = 0;
  double hit_rate = 0, oracle_hit_rate = 0, oracle_preloaded_hit_rate = 0;
  double unique_fraction = 0;  // unique rows per batch / ids per batch
  // rows/s = ids resolved per second; lookups/s = output vectors per second (bags when bag_size > 1).
  double cached_rows_per_s = 0, uncached_rows_per_s = 0, fp32_rows_per_s = 0;
  double cached_lookups_per_s = 0, uncached_lookups_per_s = 0, fp32_lookups_per_s = 0;
  std::uint64_t evictions = 0, bytes_read = 0, bytes_dequantized = 0;
  // Prefetch experiment (zeros when off).
  double prefetch_coverage = 0;           // share of each batch's unique rows resident when it starts
  double coverage_without_prefetch = 0;   // the same share with the cache alone
  double fill_us_per_batch = 0;           // without prefetch: time lookups spend fetching missing rows
  double fill_us_per_batch_prefetch = 0;  // with prefetch: what is left of it
  double lookup_us_per_batch = 0, lookup_us_per_batch_prefetch = 0;
  double compute_us_per_batch = 0;
  double prefetch_hidden_fraction = 0;  // (lookup time saved) / (fill time without prefetch)
};

// fp32 is the same table stored as float32 (the gather baseline); progress gets values in [0, 1].
EmbedBenchResult run_embed_bench(const EmbeddingTable& table, const EmbeddingTable& fp32,
                                 std::span<const std::int64_t> ids, const EmbedBenchOptions& options,
                                 const std::function<void(double)>& progress = {});

}  // namespace qk::perf
