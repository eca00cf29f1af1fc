// Replays an id stream through the cache's replacement policies without a table (no rows are moved),
// for sizing a cache before buying memory, and computes the oracle it is judged against.
//
// Hit rate = lookups served from the cache / lookups, replayed one id at a time from an empty cache.
// Two oracles, both a static cache holding the stream's own most frequent rows (ties broken by id):
//   oracle            it starts empty like every online policy, so each of its rows misses on its first
//                     lookup (a row has to be read once to be cached): the like-for-like bound.
//   oracle_preloaded  the rows are in place before the stream starts: first lookups are free. Online
//                     policies cannot reach it on a stream that touches each hot row only a few times.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quantkit/embed/cache_policy.hpp"

namespace qk {

struct ReplayResult {
  std::int64_t lookups = 0;
  std::int64_t hits = 0;
  std::int64_t evictions = 0;
  std::int64_t bypassed = 0;  // misses not admitted (LFU admission, static)
  double hit_rate() const { return lookups ? static_cast<double>(hits) / static_cast<double>(lookups) : 0.0; }
};

struct ReplayOptions {
  CachePolicy policy = CachePolicy::kLfu;
  std::int64_t capacity = 0;      // rows
  std::int64_t aging_window = 0;  // LFU; 0 = 10 x capacity, at least rows / 16
  // Static policy: the rows loaded before the stream (top-k of a profile); see top_rows().
  std::vector<std::int64_t> static_rows;
  // Count hits and lookups only from this position on (the earlier ids still warm the cache).
  std::int64_t measure_from = 0;
};

ReplayResult replay(std::span<const std::int64_t> ids, std::int64_t rows, const ReplayOptions& options);

// The k most frequent rows of ids (ties by smaller id), most frequent first.
std::vector<std::int64_t> top_rows(std::span<const std::int64_t> ids, std::int64_t rows, std::int64_t k);

struct OracleHitRates {
  double oracle = 0.0;
  double oracle_preloaded = 0.0;
};
// The oracles for ids[measure_from:] at a capacity of k rows.
OracleHitRates oracle_hit_rates(std::span<const std::int64_t> ids, std::int64_t rows, std::int64_t k,
                                std::int64_t measure_from = 0);

struct SweepPoint {
  double cache_fraction = 0.0;  // of the rows
  std::int64_t capacity = 0;
  double lru = 0.0, lfu = 0.0, static_profile = 0.0;
  OracleHitRates oracle;
};
struct SweepOptions {
  std::vector<double> fractions;  // empty: 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5
  // The static policy's profile: the first profile_fraction of the stream (a calibration sample).
  double profile_fraction = 0.1;
};
// Every policy at every size, each replayed over the whole stream.
std::vector<SweepPoint> sweep(std::span<const std::int64_t> ids, std::int64_t rows,
                              const SweepOptions& options);

// A terminal chart of hit rate (rows, 0 at the bottom) against cache size (one column per point): L lru,
// F lfu, S static, O oracle, * where several fall in the same cell.
std::string sweep_chart(const std::vector<SweepPoint>& points, int height = 16);

}  // namespace qk
