// Printing the reports of qtool embed: the benchmark run (text or JSON) and the policy sweep.
#include "embed_report.hpp"

#include <fmt/format.h>

#include "perf/gemm_bench.hpp"

namespace qtool {

void print_embed_report(const qk::perf::EmbedBenchResult& r, const EmbedRun& run, const Output& out) {
  const auto machine = qk::perf::machine_info();
  const double cached_memory = static_cast<double>(r.table_bytes + r.cache_bytes);
  if (out.json) {
    const auto prefetch_only = [&](double v) {
      return run.prefetch ? nlohmann::json(v) : nlohmann::json(nullptr);
    };
    print_json({{"table", run.source},
                {"storage", qk::to_string(run.table.storage())},
                {"rows", run.table.rows()},
                {"dim", run.table.dim()},
                {"ids", r.ids},
                {"batch", run.batch},
                {"bag_size", run.bag_size},
                {"policy", run.policy},
                {"cache_rows", r.cache_rows},
                {"cache_bytes", r.cache_bytes},
                {"table_bytes", r.table_bytes},
                {"fp32_table_bytes", r.fp32_table_bytes},
                {"memory_vs_fp32", cached_memory / static_cast<double>(r.fp32_table_bytes)},
                {"hit_rate", r.hit_rate},
                {"oracle_hit_rate", r.oracle_hit_rate},
                {"oracle_preloaded_hit_rate", r.oracle_preloaded_hit_rate},
                {"unique_fraction", r.unique_fraction},
                {"cached_rows_per_s", r.cached_rows_per_s},
                {"uncached_rows_per_s", r.uncached_rows_per_s},
                {"fp32_rows_per_s", r.fp32_rows_per_s},
                {"cached_lookups_per_s", r.cached_lookups_per_s},
                {"uncached_lookups_per_s", r.uncached_lookups_per_s},
                {"fp32_lookups_per_s", r.fp32_lookups_per_s},
                {"evictions", r.evictions},
                {"bytes_read", r.bytes_read},
                {"bytes_dequantized", r.bytes_dequantized},
                {"prefetch_coverage", prefetch_only(r.prefetch_coverage)},
                {"coverage_without_prefetch", prefetch_only(r.coverage_without_prefetch)},
                {"prefetch_hidden_fraction", prefetch_only(r.prefetch_hidden_fraction)},
                {"fill_us_per_batch", prefetch_only(r.fill_us_per_batch)},
                {"fill_us_per_batch_prefetch", prefetch_only(r.fill_us_per_batch_prefetch)},
                {"compute_us_per_batch", prefetch_only(r.compute_us_per_batch)},
                {"cpu", machine.cpu},
                {"isa", machine.isa}});
    return;
  }
  const double fp32_bytes = static_cast<double>(r.fp32_table_bytes);
  fmt::print("qtool embed: {} ({} path)\n", machine.cpu, machine.isa);
  fmt::print("table   {}: {} x {} stored {}: {} ({:.3f} of fp32 {}){}\n", run.source, run.table.rows(),
             run.table.dim(), qk::to_string(run.table.storage()),
             human_bytes(static_cast<std::uint64_t>(r.table_bytes)),
             static_cast<double>(r.table_bytes) / fp32_bytes,
             human_bytes(static_cast<std::uint64_t>(r.fp32_table_bytes)),
             run.table.memory_mapped() ? ", memory-mapped" : "");
  fmt::print(
      "cache   {}, {} rows ({:.2f}% of the table): {} (slab, map, policy); table + cache = {:.3f} of "
      "fp32\n",
      run.policy, r.cache_rows,
      100.0 * static_cast<double>(r.cache_rows) / static_cast<double>(run.table.rows()),
      human_bytes(static_cast<std::uint64_t>(r.cache_bytes)), cached_memory / fp32_bytes);
  fmt::print("stream  {} ids in {} batches of {}{}; unique rows per batch {:.2f} of its ids\n", r.ids,
             r.batches, run.batch, run.bag_size > 1 ? fmt::format(" (sum bags of {})", run.bag_size) : "",
             r.unique_fraction);
  fmt::print(
      "hit rate {:.4f}; oracle {:.4f} (lfu/lru/static reach {:.3f} of it); oracle preloaded {:.4f}\n\n",
      r.hit_rate, r.oracle_hit_rate, r.oracle_hit_rate > 0 ? r.hit_rate / r.oracle_hit_rate : 0.0,
      r.oracle_preloaded_hit_rate);
  fmt::print("| path | rows/s | lookups/s | vs uncached | vs fp32 gather | memory vs fp32 |\n");
  fmt::print("|---|---:|---:|---:|---:|---:|\n");
  const auto row = [&](const std::string& name, double rows_s, double lookups_s, double memory) {
    fmt::print("| {} | {:.3g} | {:.3g} | {:.2f}x | {:.2f}x | {:.3f} |\n", name, rows_s, lookups_s,
               rows_s / r.uncached_rows_per_s, rows_s / r.fp32_rows_per_s, memory / fp32_bytes);
  };
  row(fmt::format("{} + {} cache", qk::to_string(run.table.storage()), run.policy), r.cached_rows_per_s,
      r.cached_lookups_per_s, cached_memory);
  row(fmt::format("{} uncached", qk::to_string(run.table.storage())), r.uncached_rows_per_s,
      r.uncached_lookups_per_s, static_cast<double>(r.table_bytes));
  row("fp32 gather", r.fp32_rows_per_s, r.fp32_lookups_per_s, fp32_bytes);
  if (run.prefetch) {
    fmt::print(
        "\nprefetch ({}): coverage {:.3f} (cache alone {:.3f}); fill {:.1f} us/batch without, {:.1f} with; "
        "lookup {:.1f} -> {:.1f} us/batch; dense layer {:.1f} us/batch; hidden {:.0f}% of the fill time\n",
        run.predict ? "predicted rows" : "next batch", r.prefetch_coverage, r.coverage_without_prefetch,
        r.fill_us_per_batch, r.fill_us_per_batch_prefetch, r.lookup_us_per_batch,
        r.lookup_us_per_batch_prefetch, r.compute_us_per_batch, 100.0 * r.prefetch_hidden_fraction);
  }
  fmt::print(
      "\nrows/s: ids resolved per second, single thread, median of {} passes (cached passes start "
      "empty).\n",
      run.repeats);
}

void print_sweep(const std::vector<qk::SweepPoint>& points, std::int64_t rows, std::size_t ids,
                 double profile_fraction, const Output& out) {
  if (out.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& p : points) {
      j.push_back({{"cache_fraction", p.cache_fraction},
                   {"cache_rows", p.capacity},
                   {"lru", p.lru},
                   {"lfu", p.lfu},
                   {"static", p.static_profile},
                   {"oracle", p.oracle.oracle},
                   {"oracle_preloaded", p.oracle.oracle_preloaded}});
    }
    print_json({{"rows", rows}, {"ids", ids}, {"static_profile_fraction", profile_fraction}, {"points", j}});
    return;
  }
  fmt::print("qtool embed --sweep: {} ids over {} rows, each policy replayed from an empty cache\n", ids,
             rows);
  fmt::print(
      "static: top rows of the first {:.0f}% of the stream; oracle: the stream's own top rows, filled on\n"
      "first use (preloaded: in place before the stream)\n\n",
      profile_fraction * 100);
  fmt::print("| cache | rows | lru | lfu | static | oracle | oracle preloaded | lfu / oracle |\n");
  fmt::print("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& p : points) {
    fmt::print("| {:.1f}% | {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.3f} |\n",
               p.cache_fraction * 100, p.capacity, p.lru, p.lfu, p.static_profile, p.oracle.oracle,
               p.oracle.oracle_preloaded, p.oracle.oracle > 0 ? p.lfu / p.oracle.oracle : 0.0);
  }
  fmt::print("\nhit rate\n{}", qk::sweep_chart(points));
}

}  // namespace qtool
