// qtool embed's measurements: cached vs uncached vs float32 gather, hit rate vs oracle, prefetch.
#include "perf/embed_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/embed/cache_replay.hpp"
#include "quantkit/embed/hot_row_cache.hpp"
#include "quantkit/embed/prefetcher.hpp"
#include "quantkit/embed/sparse_lookup.hpp"
#include "quantkit/kernels/aligned_vector.hpp"
#include "quantkit/kernels/gemm.hpp"

namespace qk::perf {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The stream cut into batches (whole bags when bag_size > 1; the tail that does not fill a bag is dropped).
struct Batches {
  std::vector<std::span<const std::int64_t>> spans;
  std::vector<std::int64_t> offsets;  // bag offsets of a full batch (0, K, 2K, ...)
};

Batches make_batches(std::span<const std::int64_t> ids, std::int64_t batch, std::int64_t bag_size) {
  Batches b;
  const std::int64_t per = std::max<std::int64_t>(bag_size, batch / bag_size * bag_size);
  const std::int64_t usable = static_cast<std::int64_t>(ids.size()) / bag_size * bag_size;
  for (std::int64_t start = 0; start < usable; start += per)
    b.spans.push_back(ids.subspan(static_cast<std::size_t>(start),
                                  static_cast<std::size_t>(std::min(per, usable - start))));
  return b;
}

std::vector<std::int64_t> bag_offsets(std::int64_t n, std::int64_t bag_size) {
  std::vector<std::int64_t> offsets;
  for (std::int64_t o = 0; o < n; o += bag_size) offsets.push_back(o);
  return offsets;
}

std::unique_ptr<HotRowCache> make_cache(const std::shared_ptr<const EmbeddingTable>& table, std::int64_t rows,
                                        const EmbedBenchOptions& options,
                                        const std::vector<std::int64_t>& profile) {
  HotRowCacheOptions o;
  o.policy = options.policy;
  o.capacity_rows = rows;
  o.static_rows = profile;  // rows 0 with capacity_bytes 0 is a legal empty cache: every lookup misses
  return std::make_unique<HotRowCache>(table, o);
}

}  // namespace

EmbedBenchResult run_embed_bench(const EmbeddingTable& table, const EmbeddingTable& fp32,
                                 std::span<const std::int64_t> ids, const EmbedBenchOptions& options,
                                 const std::function<void(double)>& progress) {
  if (ids.empty()) throw Error("embed bench: the id stream is empty");
  if (options.batch < 1 || options.bag_size < 1 || options.repeats < 1)
    throw Error("embed bench: batch, bag size and repeats must be at least 1");
  if (fp32.rows() != table.rows() || fp32.dim() != table.dim() || fp32.storage() != EmbeddingStorage::kF32)
    throw Error("embed bench: the float32 baseline table does not match the table");
  table.check_ids(ids, "embed bench ids");
  const std::int64_t dim = table.dim();
  // A non-owning handle: the caller's table outlives every cache made here.
  const std::shared_ptr<const EmbeddingTable> shared(&table, [](const EmbeddingTable*) {});

  EmbedBenchResult r;
  r.cache_rows = options.cache_rows > 0
                     ? std::min(options.cache_rows, table.rows())
                     : static_cast<std::int64_t>(options.cache_fraction * static_cast<double>(table.rows()));
  const Batches batches = make_batches(ids, options.batch, options.bag_size);
  if (batches.spans.empty()) throw Error("embed bench: fewer ids than one bag");
  r.batches = static_cast<std::int64_t>(batches.spans.size());
  for (const auto& s : batches.spans) r.ids += static_cast<std::int64_t>(s.size());
  const std::span<const std::int64_t> used = ids.first(static_cast<std::size_t>(r.ids));
  std::vector<std::int64_t> profile;
  if (options.policy == CachePolicy::kStatic) {
    const auto n =
        static_cast<std::size_t>(options.static_profile_fraction * static_cast<double>(used.size()));
    profile = top_rows(used.first(std::max<std::size_t>(n, 1)), table.rows(), r.cache_rows);
  }
  r.table_bytes = table.bytes();
  r.fp32_table_bytes = table.fp32_bytes();
  const OracleHitRates oracle = oracle_hit_rates(used, table.rows(), r.cache_rows);
  r.oracle_hit_rate = oracle.oracle;
  r.oracle_preloaded_hit_rate = oracle.oracle_preloaded;

  const bool bags = options.bag_size > 1;
  const std::int64_t max_batch = static_cast<std::int64_t>(batches.spans.front().size());
  kernels::AlignedVector<float> out(static_cast<std::size_t>(max_batch * dim));
  const auto outputs_of = [&](std::span<const std::int64_t> b) {
    return bags ? static_cast<std::int64_t>(b.size()) / options.bag_size
                : static_cast<std::int64_t>(b.size());
  };
  const auto out_span = [&](std::span<const std::int64_t> b) {
    return std::span<float>(out.data(), static_cast<std::size_t>(outputs_of(b) * dim));
  };
  BagOptions bag_options;
  bag_options.mode = BagMode::kSum;

  const int work_items = 3 * options.repeats + (options.prefetch ? 2 : 0);
  int done = 0;
  const auto tick = [&] {
    if (progress) progress(static_cast<double>(++done) / work_items);
  };

  std::vector<double> cached_s, uncached_s, fp32_s;
  std::int64_t unique_total = 0;
  for (int rep = 0; rep < options.repeats; ++rep) {
    auto cache = make_cache(shared, r.cache_rows, options, profile);
    r.cache_bytes = cache->bytes();
    BatchInfo info;
    unique_total = 0;
    auto start = Clock::now();
    for (const auto& b : batches.spans) {
      const std::vector<std::int64_t> offsets =
          bags ? bag_offsets(static_cast<std::int64_t>(b.size()), options.bag_size)
               : std::vector<std::int64_t>{};
      if (bags) {
        cache->embedding_bag(b, offsets, bag_options, out_span(b), &info);
      } else {
        cache->lookup(b, out_span(b), &info);
      }
      unique_total += info.unique;
    }
    cached_s.push_back(seconds_since(start));
    const CacheStats stats = cache->stats();
    r.hit_rate = stats.hit_rate();
    r.evictions = stats.evictions;
    r.bytes_read = stats.bytes_read;
    r.bytes_dequantized = stats.bytes_dequantized;
    tick();

    start = Clock::now();
    for (const auto& b : batches.spans) {
      if (bags) {
        embedding_bag(table, b, bag_offsets(static_cast<std::int64_t>(b.size()), options.bag_size),
                      bag_options, out_span(b));
      } else {
        embedding_lookup(table, b, out_span(b));
      }
    }
    uncached_s.push_back(seconds_since(start));
    tick();

    // The plain float32 gather: one memcpy per id (bags: sum the rows), no de-duplication.
    start = Clock::now();
    const std::size_t row_bytes = static_cast<std::size_t>(dim) * 4;
    for (const auto& b : batches.spans) {
      if (bags) {
        for (std::int64_t k = 0; k < outputs_of(b); ++k) {
          float* acc = out.data() + k * dim;
          std::fill(acc, acc + dim, 0.0f);
          for (std::int64_t j = 0; j < options.bag_size; ++j) {
            const auto* row = reinterpret_cast<const float*>(
                fp32.row_data(b[static_cast<std::size_t>(k * options.bag_size + j)]));
            for (std::int64_t d = 0; d < dim; ++d) acc[d] += row[d];
          }
        }
      } else {
        for (std::size_t i = 0; i < b.size(); ++i)
          std::memcpy(out.data() + i * static_cast<std::size_t>(dim), fp32.row_data(b[i]), row_bytes);
      }
    }
    fp32_s.push_back(seconds_since(start));
    tick();
  }
  r.unique_fraction = static_cast<double>(unique_total) / static_cast<double>(r.ids);
  const double outputs = bags ? static_cast<double>(r.ids / options.bag_size) : static_cast<double>(r.ids);
  const double t_cached = median(cached_s), t_uncached = median(uncached_s), t_fp32 = median(fp32_s);
  r.cached_rows_per_s = static_cast<double>(r.ids) / t_cached;
  r.uncached_rows_per_s = static_cast<double>(r.ids) / t_uncached;
  r.fp32_rows_per_s = static_cast<double>(r.ids) / t_fp32;
  r.cached_lookups_per_s = outputs / t_cached;
  r.uncached_lookups_per_s = outputs / t_uncached;
  r.fp32_lookups_per_s = outputs / t_fp32;

  if (!options.prefetch) return r;

  // The pipeline: fetch batch t (lookup or bag), then a dense layer y = x W^T over its output.
  const std::int64_t hidden = options.compute_dim > 0 ? options.compute_dim : dim;
  std::vector<float> weights(static_cast<std::size_t>(hidden * dim));
  for (std::size_t i = 0; i < weights.size(); ++i)
    weights[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  const kernels::Fp32Weights layer = kernels::pack_fp32(weights, hidden, dim);
  std::vector<float> y(static_cast<std::size_t>(max_batch * hidden));

  struct PipelineTimes {
    double lookup_s = 0, fill_s = 0, compute_s = 0;
    std::int64_t resident = 0, unique = 0;
  };
  const auto pipeline = [&](bool with_prefetch) {
    PipelineTimes t;
    auto cache = make_cache(shared, r.cache_rows, options, profile);
    std::unique_ptr<Prefetcher> prefetcher;
    std::unique_ptr<RowPredictor> predictor;
    if (with_prefetch) {
      prefetcher = std::make_unique<Prefetcher>(*cache);
      if (options.predict) predictor = std::make_unique<RowPredictor>(table.rows());
      if (!options.predict) {
        prefetcher->prefetch(batches.spans.front());
        prefetcher->wait();
      }
    }
    BatchInfo info;
    for (std::size_t s = 0; s < batches.spans.size(); ++s) {
      const auto b = batches.spans[s];
      if (prefetcher && !options.predict && s + 1 < batches.spans.size())
        prefetcher->prefetch(batches.spans[s + 1]);
      const auto start = Clock::now();
      if (bags) {
        cache->embedding_bag(b, bag_offsets(static_cast<std::int64_t>(b.size()), options.bag_size),
                             bag_options, out_span(b), &info);
      } else {
        cache->lookup(b, out_span(b), &info);
      }
      t.lookup_s += seconds_since(start);
      t.fill_s += static_cast<double>(info.fill_ns) * 1e-9;
      if (s > 0) {
        t.resident += info.resident_at_start;
        t.unique += info.unique;
      }
      if (predictor) {
        predictor->observe(b);
        prefetcher->prefetch(predictor->propose(b, b.size()));
      }
      const auto compute_start = Clock::now();
      const std::int64_t n_out = outputs_of(b);
      kernels::gemm(std::span<const float>(out.data(), static_cast<std::size_t>(n_out * dim)), n_out, layer,
                    std::span<float>(y.data(), static_cast<std::size_t>(n_out * hidden)));
      t.compute_s += seconds_since(compute_start);
    }
    if (prefetcher) prefetcher->wait();
    return t;
  };
  const PipelineTimes without = pipeline(false);
  tick();
  const PipelineTimes with = pipeline(true);
  tick();
  const double n_batches = static_cast<double>(r.batches);
  r.coverage_without_prefetch =
      without.unique ? static_cast<double>(without.resident) / static_cast<double>(without.unique) : 0;
  r.prefetch_coverage =
      with.unique ? static_cast<double>(with.resident) / static_cast<double>(with.unique) : 0;
  r.fill_us_per_batch = without.fill_s / n_batches * 1e6;
  r.fill_us_per_batch_prefetch = with.fill_s / n_batches * 1e6;
  r.lookup_us_per_batch = without.lookup_s / n_batches * 1e6;
  r.lookup_us_per_batch_prefetch = with.lookup_s / n_batches * 1e6;
  r.compute_us_per_batch = without.compute_s / n_batches * 1e6;
  r.prefetch_hidden_fraction = without.fill_s > 0 ? (without.lookup_s - with.lookup_s) / without.fill_s : 0;
  return r;
}

}  // namespace qk::perf
