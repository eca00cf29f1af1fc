// Printing qtool embed --store's measurements: one row per tier, with the memory each process held.
#include "store_report.hpp"

#include <fmt/format.h>

#include <filesystem>

#include "perf/gemm_bench.hpp"

namespace qtool {

namespace {
nlohmann::json or_null(bool given, double v) { return given ? nlohmann::json(v) : nlohmann::json(nullptr); }
}  // namespace

void print_store_report(const qk::perf::StoreBenchResult& r, const qk::perf::StoreBenchOptions& o,
                        const Output& out) {
  const auto machine = qk::perf::machine_info();
  const bool f32s = !o.fp32_store.empty(), f32t = !o.fp32_table.empty();
  if (out.json) {
    print_json(
        {{"store", o.store},
         {"storage", r.storage},
         {"rows", r.rows},
         {"dim", r.dim},
         {"store_bytes", r.store_bytes},
         {"ids", r.ids},
         {"warmup_ids", r.warmup_ids},
         {"batch", o.batch},
         {"policy", qk::to_string(o.policy)},
         {"io_backend", r.io_backend},
         {"direct_io", r.direct_io},
         {"io_fallback_reason", r.io_fallback_reason},
         {"ram_budget_bytes", r.ram_budget_bytes},
         {"cache_rows", r.cached.cache_rows},
         {"cache_bytes", r.cached.cache_bytes},
         {"hit_rate", r.cached.hit_rate},
         {"oracle_hit_rate", r.oracle_hit_rate},
         {"oracle_preloaded_hit_rate", r.oracle_preloaded_hit_rate},
         {"cached_rows_per_s", r.cached.rows_per_s},
         {"uncached_direct_rows_per_s", r.uncached.rows_per_s},
         {"peak_rss_bytes", r.cached.peak_rss_bytes},
         {"start_rss_bytes", r.cached.start_rss_bytes},
         {"uncached_peak_rss_bytes", r.uncached.peak_rss_bytes},
         {"disk_bytes_read_per_lookup",
          static_cast<double>(r.cached.disk_bytes_read) / static_cast<double>(r.ids)},
         {"uncached_disk_bytes_read_per_lookup",
          static_cast<double>(r.uncached.disk_bytes_read) / static_cast<double>(r.ids)},
         {"fp32_store_cached_rows_per_s", or_null(f32s, r.fp32_store.rows_per_s)},
         {"fp32_store_cache_rows", f32s ? nlohmann::json(r.fp32_store.cache_rows) : nlohmann::json(nullptr)},
         {"fp32_store_hit_rate", or_null(f32s, r.fp32_store.hit_rate)},
         {"fp32_store_peak_rss_bytes",
          f32s ? nlohmann::json(r.fp32_store.peak_rss_bytes) : nlohmann::json(nullptr)},
         {"fp32_mmap_rows_per_s", or_null(f32t, r.fp32_mmap_warm.rows_per_s)},
         {"fp32_mmap_cold_rows_per_s", or_null(f32t, r.fp32_mmap_cold.rows_per_s)},
         {"fp32_mmap_peak_rss_bytes",
          f32t ? nlohmann::json(r.fp32_mmap_cold.peak_rss_bytes) : nlohmann::json(nullptr)},
         {"fp32_mmap_page_cache_bytes",
          f32t ? nlohmann::json(r.fp32_mmap_page_cache_bytes) : nlohmann::json(nullptr)},
         {"prefetch_coverage", or_null(o.prefetch, r.prefetch_coverage)},
         {"prefetch_hidden_fraction", or_null(o.prefetch, r.prefetch_hidden_fraction)},
         {"read_us_per_batch", or_null(o.prefetch, r.read_us_per_batch)},
         {"lookup_us_per_batch", or_null(o.prefetch, r.lookup_us_per_batch)},
         {"lookup_us_per_batch_prefetch", or_null(o.prefetch, r.lookup_us_per_batch_prefetch)},
         {"compute_us_per_batch", or_null(o.prefetch, r.compute_us_per_batch)},
         {"cpu", machine.cpu}});
    return;
  }
  const auto mib = [](std::int64_t b) { return static_cast<double>(b) / (1 << 20); };
  fmt::print("qtool embed --store: {} ({} path)\n", machine.cpu, machine.isa);
  fmt::print("store   {}: {} x {} {}, {} on disk; reads: {}, {}{}\n", o.store, r.rows, r.dim, r.storage,
             human_bytes(static_cast<std::uint64_t>(r.store_bytes)), r.io_backend,
             r.direct_io ? "direct I/O" : "buffered",
             r.io_fallback_reason.empty() ? "" : " (" + r.io_fallback_reason + ")");
  fmt::print("cache   {}, budget {} = {} rows ({:.2f}% of the table)\n", qk::to_string(o.policy),
             human_bytes(static_cast<std::uint64_t>(r.ram_budget_bytes)), r.cached.cache_rows,
             100.0 * static_cast<double>(r.cached.cache_rows) / static_cast<double>(r.rows));
  fmt::print("stream  {} ids timed in {} batches of {}, after {} warm-up ids\n", r.ids, r.batches, o.batch,
             r.warmup_ids);
  fmt::print("hit rate {:.4f}; oracle {:.4f} ({:.3f} of it); oracle preloaded {:.4f}\n\n", r.cached.hit_rate,
             r.oracle_hit_rate, r.oracle_hit_rate > 0 ? r.cached.hit_rate / r.oracle_hit_rate : 0.0,
             r.oracle_preloaded_hit_rate);
  fmt::print("| path | rows/s | vs uncached | disk bytes/id | peak RSS MiB |\n|---|---:|---:|---:|---:|\n");
  const auto row = [&](const std::string& name, const qk::perf::StorePathResult& p, bool disk) {
    fmt::print(
        "| {} | {:.3g} | {:.2f}x | {} | {:.0f} |\n", name, p.rows_per_s, p.rows_per_s / r.uncached.rows_per_s,
        disk ? fmt::format("{:.0f}", static_cast<double>(p.disk_bytes_read) / static_cast<double>(r.ids))
             : "-",
        mib(p.peak_rss_bytes));
  };
  row(fmt::format("{} store + {} cache (hit {:.3f})", r.storage, qk::to_string(o.policy), r.cached.hit_rate),
      r.cached, true);
  row(fmt::format("{} store, uncached direct reads", r.storage), r.uncached, true);
  if (f32s)
    row(fmt::format("fp32 store + cache, same budget ({} rows, hit {:.3f})", r.fp32_store.cache_rows,
                    r.fp32_store.hit_rate),
        r.fp32_store, true);
  if (f32t) {
    row("fp32 .npy mmap, cold page cache", r.fp32_mmap_cold, false);
    row("fp32 .npy mmap, warm page cache", r.fp32_mmap_warm, false);
    fmt::print("(the OS page cache grew by {:.0f} MiB under the mmap path's cold pass, outside its RSS)\n",
               mib(r.fp32_mmap_page_cache_bytes));
  }
  if (o.prefetch) {
    fmt::print(
        "\nprefetch: coverage {:.3f}; disk reads {:.1f} us/batch without the worker; lookup {:.1f} -> {:.1f} "
        "us/batch; dense layer {:.1f} us/batch; hidden {:.0f}% of the read time\n",
        r.prefetch_coverage, r.read_us_per_batch, r.lookup_us_per_batch, r.lookup_us_per_batch_prefetch,
        r.compute_us_per_batch, 100.0 * r.prefetch_hidden_fraction);
  }
  fmt::print(
      "\nOne thread; each path in its own process, timed over the same ids (the caches start empty and see "
      "the "
      "warm-up ids first; the mmap path starts from a cold page cache). Peak RSS includes the process's own "
      "{:.0f} MiB at the start; the mmap path's page cache is not bounded by the budget.\n",
      mib(r.cached.start_rss_bytes));
}

void print_store_written(const qk::RowStoreHeader& h, const std::string& path, const Output& out) {
  const auto bytes = std::filesystem::file_size(path);
  if (out.json) {
    print_json({{"output", path},
                {"storage", qk::to_string(h.storage)},
                {"rows", h.rows},
                {"dim", h.dim},
                {"row_bytes", h.row_bytes},
                {"file_bytes", bytes},
                {"fp32_table_bytes", h.rows * h.dim * 4}});
    return;
  }
  fmt::print("wrote {}: {} x {} {} rows, {} ({:.3f} of fp32)\n", path, h.rows, h.dim,
             qk::to_string(h.storage), human_bytes(bytes),
             static_cast<double>(bytes) / static_cast<double>(h.rows * h.dim * 4));
}

}  // namespace qtool
