// qtool embed: the hot-row embedding cache on a table and an id stream (library: embed/, perf/).
//   qtool embed --table T.npy|T.npz [--ids IDS.npy] [--bits 32|16|8|4] [--cache-rows N | --cache-frac F]
//               [--policy lru|lfu|static] [--batch B] [--bag-size K] [--prefetch [--predict]]
//   qtool embed [--rows R --dim D --zipf S --steps N]      synthetic table and Zipf stream
//   qtool embed --table T.npy --bits 8 --save T8.npz       write the quantized table
//   qtool embed --ids IDS.npy --sweep [--rows R]           hit-rate curves per policy, no table needed
#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "common.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/embed/cache_replay.hpp"
#include "quantkit/embed/embedding_table.hpp"
#include "quantkit/embed/id_stream.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "perf/embed_bench.hpp"
#include "perf/gemm_bench.hpp"

namespace qtool {

namespace {

struct EmbedArgs {
  std::string table, ids, save, bits = "8", policy = "lfu";
  std::int64_t cache_rows = 0;
  double cache_frac = 0.05;
  std::int64_t batch = 512, bag_size = 1, rows = 100000, dim = 128, steps = 200;
  double zipf = 1.05, shift = 0.0, profile_frac = 0.1;
  std::uint64_t seed = 1;
  int repeats = 3;
  bool prefetch = false, predict = false, sweep = false;
  std::vector<double> fractions;
  const CLI::Option* rows_opt = nullptr;
  const CLI::Option* cache_rows_opt = nullptr;
  const CLI::Option* cache_frac_opt = nullptr;
};

std::int64_t max_id_plus_one(const std::vector<std::int64_t>& ids) {
  std::int64_t m = -1;
  for (const std::int64_t id : ids) {
    if (id < 0) throw qk::Error("ids: negative id " + std::to_string(id));
    m = std::max(m, id);
  }
  return m + 1;
}

std::vector<std::int64_t> stream_for(const EmbedArgs& a, std::int64_t rows) {
  if (!a.ids.empty()) return qk::read_ids(a.ids);
  qk::ZipfStreamOptions z;
  z.rows = rows;
  z.length = a.steps * a.batch;
  z.exponent = a.zipf;
  z.seed = a.seed;
  z.shift_at = a.shift;
  return qk::zipf_stream(z);
}

int run_sweep(const EmbedArgs& a, const Output& out) {
  std::int64_t rows = a.rows;
  std::vector<std::int64_t> ids;
  if (!a.ids.empty()) {
    ids = qk::read_ids(a.ids);
    if (!a.rows_opt->count()) rows = max_id_plus_one(ids);
  } else {
    ids = stream_for(a, rows);
  }
  qk::SweepOptions options;
  options.fractions = a.fractions;
  options.profile_fraction = a.profile_frac;
  const auto points = qk::sweep(ids, rows, options);
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
    print_json(
        {{"rows", rows}, {"ids", ids.size()}, {"static_profile_fraction", a.profile_frac}, {"points", j}});
    return 0;
  }
  fmt::print("qtool embed --sweep: {} ids over {} rows, each policy replayed from an empty cache\n",
             ids.size(), rows);
  fmt::print(
      "static: top rows of the first {:.0f}% of the stream; oracle: the stream's own top rows, filled on\n"
      "first use (preloaded: in place before the stream)\n\n",
      a.profile_frac * 100);
  fmt::print("| cache | rows | lru | lfu | static | oracle | oracle preloaded | lfu / oracle |\n");
  fmt::print("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& p : points) {
    fmt::print("| {:.1f}% | {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.3f} |\n",
               p.cache_fraction * 100, p.capacity, p.lru, p.lfu, p.static_profile, p.oracle.oracle,
               p.oracle.oracle_preloaded, p.oracle.oracle > 0 ? p.lfu / p.oracle.oracle : 0.0);
  }
  fmt::print("\nhit rate\n{}", qk::sweep_chart(points));
  return 0;
}

}  // namespace

Handler add_embed(CLI::App& app, Output& out) {
  auto a = std::make_shared<EmbedArgs>();
  auto* cmd = app.add_subcommand(
      "embed",
      "Hot-row embedding cache: quantized table, sparse lookups and bags, hit rate vs oracle, throughput "
      "(cached, uncached, float32 gather), prefetch; --sweep sizes a cache from recorded ids");
  cmd->add_option("--table", a->table,
                  "Table: a 2-D float .npy (rows x dim, memory-mapped) or an .npz written by --save; "
                  "default: a synthetic --rows x --dim table")
      ->check(CLI::ExistingFile);
  cmd->add_option("--ids", a->ids,
                  "Id stream: an integer .npy; default: a Zipf(--zipf) stream of --steps batches")
      ->check(CLI::ExistingFile);
  cmd->add_option("--bits", a->bits,
                  "Storage of a .npy table: 32 (fp32), 16 (fp16), 8 (int8), 4 (int4); default 8")
      ->check(CLI::IsMember({"32", "16", "8", "4", "fp32", "fp16", "int8", "int4"}));
  a->cache_rows_opt = cmd->add_option("--cache-rows", a->cache_rows, "Cache capacity in rows")
                          ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 31));
  a->cache_frac_opt =
      cmd->add_option("--cache-frac", a->cache_frac, "Cache capacity as a share of the rows (default 0.05)")
          ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--policy", a->policy, "Replacement policy: lru, lfu (aging) or static (default lfu)")
      ->check(CLI::IsMember({"lru", "lfu", "static"}));
  cmd->add_option("--batch", a->batch, "Ids per lookup call (default 512)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
  cmd->add_option("--bag-size", a->bag_size, "K > 1: sum bags of K ids instead of plain lookups (default 1)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20));
  cmd->add_flag("--prefetch", a->prefetch,
                "Also run a pipeline (lookup, then a dense layer) with and without the prefetch worker");
  cmd->add_flag("--predict", a->predict, "Prefetch the predictor's proposal instead of the known next batch");
  cmd->add_option("--repeats", a->repeats, "Passes per path; the median is reported (default 3)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--save", a->save, "Write the table in --bits storage as an .npz and stop");
  cmd->add_flag("--sweep", a->sweep,
                "Replay the ids through every policy at cache sizes 0.1%..50% of the rows");
  cmd->add_option("--fractions", a->fractions, "Cache sizes for --sweep, as shares of the rows")
      ->check(CLI::Range(1e-9, 1.0));
  cmd->add_option("--profile-frac", a->profile_frac,
                  "Static policy: profile = the first share of the stream (default 0.1)")
      ->check(CLI::Range(0.0, 1.0));
  a->rows_opt =
      cmd->add_option("--rows", a->rows, "Synthetic table rows (default 100000); --sweep: the row count")
          ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
  cmd->add_option("--dim", a->dim, "Synthetic table dim (default 128)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20));
  cmd->add_option("--zipf", a->zipf, "Synthetic stream exponent (default 1.05)")
      ->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--steps", a->steps, "Synthetic stream length in batches (default 200)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  cmd->add_option("--shift", a->shift,
                  "Synthetic stream: re-draw the hot set at this share of the stream (0: never)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", a->seed, "Synthetic data seed (default 1)");
  return [a, &out] {
    if (a->cache_rows_opt->count() && a->cache_frac_opt->count())
      throw UsageError("give --cache-rows or --cache-frac, not both");
    if (a->predict && !a->prefetch) throw UsageError("--predict needs --prefetch");
    if (a->sweep) {
      if (!a->table.empty()) throw UsageError("--sweep needs only --ids (and --rows); it reads no table");
      return run_sweep(*a, out);
    }
    const qk::EmbeddingStorage storage = qk::parse_embedding_storage(a->bits);
    const auto progress = make_progress("embed");
    std::shared_ptr<const qk::EmbeddingTable> table, fp32;
    std::string source;
    const bool npz = a->table.size() >= 4 && a->table.compare(a->table.size() - 4, 4, ".npz") == 0;
    if (!a->save.empty()) {
      if (a->table.empty() || npz)
        throw UsageError("--save needs --table T.npy (the float table to quantize)");
      qk::io::check_output_differs(a->save, {a->table});
      const qk::EmbeddingTable t = qk::EmbeddingTable::from_npy(a->table, storage, progress);
      t.save(a->save);
      finish_progress();
      if (out.json) {
        print_json({{"output", a->save},
                    {"storage", qk::to_string(storage)},
                    {"rows", t.rows()},
                    {"dim", t.dim()},
                    {"table_bytes", t.bytes()},
                    {"fp32_table_bytes", t.fp32_bytes()}});
      } else {
        fmt::print("wrote {}: {} x {} {} table, {} ({:.3f} of fp32 {})\n", a->save, t.rows(), t.dim(),
                   qk::to_string(storage), human_bytes(static_cast<std::uint64_t>(t.bytes())),
                   static_cast<double>(t.bytes()) / static_cast<double>(t.fp32_bytes()),
                   human_bytes(static_cast<std::uint64_t>(t.fp32_bytes())));
      }
      return 0;
    }
    if (a->table.empty()) {
      const std::vector<float> values = qk::synthetic_table(a->rows, a->dim, a->seed + 1);
      const qk::TensorView<const float> view(values.data(), {a->rows, a->dim});
      table = std::make_shared<qk::EmbeddingTable>(qk::EmbeddingTable::from_floats(view, storage));
      fp32 = storage == qk::EmbeddingStorage::kF32
                 ? table
                 : std::make_shared<qk::EmbeddingTable>(
                       qk::EmbeddingTable::from_floats(view, qk::EmbeddingStorage::kF32));
      source = fmt::format("synthetic {} x {} (uniform [-1, 1))", a->rows, a->dim);
    } else if (npz) {
      table = std::make_shared<qk::EmbeddingTable>(qk::EmbeddingTable::open(a->table));
      if (table->storage() == qk::EmbeddingStorage::kF32) {
        fp32 = table;
      } else {
        std::vector<float> values(static_cast<std::size_t>(table->rows() * table->dim()));
        for (std::int64_t r = 0; r < table->rows(); ++r)
          table->dequantize_row(r, values.data() + r * table->dim());
        fp32 = std::make_shared<qk::EmbeddingTable>(qk::EmbeddingTable::from_floats(
            qk::TensorView<const float>(values.data(), {table->rows(), table->dim()}),
            qk::EmbeddingStorage::kF32));
      }
      source = a->table;
    } else {
      table = std::make_shared<qk::EmbeddingTable>(qk::EmbeddingTable::from_npy(a->table, storage));
      fp32 = storage == qk::EmbeddingStorage::kF32
                 ? table
                 : std::make_shared<qk::EmbeddingTable>(
                       qk::EmbeddingTable::from_npy(a->table, qk::EmbeddingStorage::kF32));
      source = a->table;
    }
    const std::vector<std::int64_t> ids = stream_for(*a, table->rows());
    qk::perf::EmbedBenchOptions o;
    o.cache_rows = a->cache_rows;
    o.cache_fraction = a->cache_frac;
    if (a->cache_rows_opt->count() && a->cache_rows == 0) o.cache_fraction = 0.0;
    o.policy = qk::parse_cache_policy(a->policy);
    o.batch = a->batch;
    o.bag_size = a->bag_size;
    o.repeats = a->repeats;
    o.static_profile_fraction = a->profile_frac;
    o.prefetch = a->prefetch;
    o.predict = a->predict;
    const qk::perf::EmbedBenchResult r = qk::perf::run_embed_bench(*table, *fp32, ids, o, progress);
    finish_progress();
    const auto machine = qk::perf::machine_info();
    const double cached_memory = static_cast<double>(r.table_bytes + r.cache_bytes);
    if (out.json) {
      print_json(
          {{"table", source},
           {"storage", qk::to_string(table->storage())},
           {"rows", table->rows()},
           {"dim", table->dim()},
           {"ids", r.ids},
           {"batch", a->batch},
           {"bag_size", a->bag_size},
           {"policy", a->policy},
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
           {"prefetch_coverage", a->prefetch ? nlohmann::json(r.prefetch_coverage) : nlohmann::json(nullptr)},
           {"coverage_without_prefetch",
            a->prefetch ? nlohmann::json(r.coverage_without_prefetch) : nlohmann::json(nullptr)},
           {"prefetch_hidden_fraction",
            a->prefetch ? nlohmann::json(r.prefetch_hidden_fraction) : nlohmann::json(nullptr)},
           {"fill_us_per_batch", a->prefetch ? nlohmann::json(r.fill_us_per_batch) : nlohmann::json(nullptr)},
           {"fill_us_per_batch_prefetch",
            a->prefetch ? nlohmann::json(r.fill_us_per_batch_prefetch) : nlohmann::json(nullptr)},
           {"compute_us_per_batch",
            a->prefetch ? nlohmann::json(r.compute_us_per_batch) : nlohmann::json(nullptr)},
           {"cpu", machine.cpu},
           {"isa", machine.isa}});
      return 0;
    }
    const double fp32_bytes = static_cast<double>(r.fp32_table_bytes);
    fmt::print("qtool embed: {} ({} path)\n", machine.cpu, machine.isa);
    fmt::print("table   {}: {} x {} stored {}: {} ({:.3f} of fp32 {}){}\n", source, table->rows(),
               table->dim(), qk::to_string(table->storage()),
               human_bytes(static_cast<std::uint64_t>(r.table_bytes)),
               static_cast<double>(r.table_bytes) / fp32_bytes,
               human_bytes(static_cast<std::uint64_t>(r.fp32_table_bytes)),
               table->memory_mapped() ? ", memory-mapped" : "");
    fmt::print(
        "cache   {}, {} rows ({:.2f}% of the table): {} (slab, map, policy); table + cache = {:.3f} of "
        "fp32\n",
        a->policy, r.cache_rows,
        100.0 * static_cast<double>(r.cache_rows) / static_cast<double>(table->rows()),
        human_bytes(static_cast<std::uint64_t>(r.cache_bytes)), cached_memory / fp32_bytes);
    fmt::print("stream  {} ids in {} batches of {}{}; unique rows per batch {:.2f} of its ids\n", r.ids,
               r.batches, a->batch, a->bag_size > 1 ? fmt::format(" (sum bags of {})", a->bag_size) : "",
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
    row(fmt::format("{} + {} cache", qk::to_string(table->storage()), a->policy), r.cached_rows_per_s,
        r.cached_lookups_per_s, cached_memory);
    row(fmt::format("{} uncached", qk::to_string(table->storage())), r.uncached_rows_per_s,
        r.uncached_lookups_per_s, static_cast<double>(r.table_bytes));
    row("fp32 gather", r.fp32_rows_per_s, r.fp32_lookups_per_s, fp32_bytes);
    if (a->prefetch) {
      fmt::print(
          "\nprefetch ({}): coverage {:.3f} (cache alone {:.3f}); fill {:.1f} us/batch without, {:.1f} with; "
          "lookup {:.1f} -> {:.1f} us/batch; dense layer {:.1f} us/batch; hidden {:.0f}% of the fill time\n",
          a->predict ? "predicted rows" : "next batch", r.prefetch_coverage, r.coverage_without_prefetch,
          r.fill_us_per_batch, r.fill_us_per_batch_prefetch, r.lookup_us_per_batch,
          r.lookup_us_per_batch_prefetch, r.compute_us_per_batch, 100.0 * r.prefetch_hidden_fraction);
    }
    fmt::print(
        "\nrows/s: ids resolved per second, single thread, median of {} passes (cached passes start "
        "empty).\n",
        a->repeats);
    return 0;
  };
}

}  // namespace qtool
