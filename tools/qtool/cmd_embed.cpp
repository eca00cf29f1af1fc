// qtool embed: the hot-row embedding cache on a table and an id stream (library: embed/, perf/).
//   qtool embed --table T.npy|T.npz [--ids IDS.npy] [--bits 32|16|8|4] [--cache-rows N | --cache-frac F]
//               [--policy lru|lfu|static] [--batch B] [--bag-size K] [--prefetch [--predict]]
//   qtool embed [--rows R --dim D --zipf S --steps N]      synthetic table and Zipf stream
//   qtool embed --table T.npy --bits 8 --save T8.npz       write the quantized table
//   qtool embed --ids IDS.npy --sweep [--rows R]           hit-rate curves per policy, no table needed
//   qtool embed --table T.npy --bits 8 --store T.q8        write a row store on disk (streamed)
//   qtool embed --rows R --dim D --bits 8 --store T.q8 --create   ... of the seeded synthetic table
//   qtool embed --store T.q8 [--ids IDS.npy | --zipf S --steps N --batch B] [--ram-budget BYTES |
//               --cache-frac F] [--policy P] [--prefetch] [--fp32-store F32] [--fp32-table T.npy]
//                                                          the disk -> RAM cache tiers (perf/store_bench)
#include <fmt/format.h>

#include <memory>

#include "common.hpp"
#include "embed_args.hpp"
#include "embed_report.hpp"
#include "perf/embed_bench.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/embed/bench_inputs.hpp"
#include "quantkit/embed/cache_replay.hpp"
#include "quantkit/embed/embedding_table.hpp"
#include "quantkit/files/embed_workload.hpp"

namespace qtool {

namespace {

// The workload the flags describe (files, or the synthetic table and stream).
qk::EmbedWorkloadOptions workload_options(const EmbedArgs& a, qk::EmbeddingStorage storage) {
  qk::EmbedWorkloadOptions w;
  w.table = a.table;
  w.ids = a.ids;
  w.storage = storage;
  w.rows = a.rows;
  w.dim = a.dim;
  w.stream_length = a.steps * a.batch;
  w.zipf_exponent = a.zipf;
  w.shift_at = a.shift;
  w.seed = a.seed;
  return w;
}

int run_sweep(const EmbedArgs& a, const Output& out) {
  const std::vector<std::int64_t> ids =
      qk::embed_ids(workload_options(a, qk::EmbeddingStorage::kF32), a.rows);
  const std::int64_t rows = !a.ids.empty() && !a.rows_opt->count() ? qk::rows_for_ids(ids) : a.rows;
  qk::SweepOptions options;
  options.fractions = a.fractions;
  options.profile_fraction = a.profile_frac;
  const auto points = qk::sweep(ids, rows, options);
  print_sweep(points, rows, ids.size(), a.profile_frac, out);
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
      ->type_name("TEXT:FILE");  // a missing file is an input error (exit 1) found when it is read
  cmd->add_option("--ids", a->ids,
                  "Id stream: an integer .npy; default: a Zipf(--zipf) stream of --steps batches")
      ->type_name("TEXT:FILE");
  a->bits_opt =
      cmd->add_option(
             "--bits", a->bits,
             "Storage of a .npy table or a new store: 32 (fp32), 16 (fp16), 8 (int8), 4 (int4); default 8")
          ->check(CLI::IsMember({"32", "16", "8", "4", "fp32", "fp16", "int8", "int4"}));
  a->cache_rows_opt = cmd->add_option("--cache-rows", a->cache_rows, "Cache capacity in rows")
                          ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 31));
  a->cache_frac_opt =
      cmd->add_option("--cache-frac", a->cache_frac, "Cache capacity as a share of the rows (default 0.05)")
          ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--policy", a->policy, "Replacement policy: lru, lfu (aging) or static (default lfu)")
      ->check(CLI::IsMember({"lru", "lfu", "static"}));
  a->batch_opt = cmd->add_option("--batch", a->batch, "Ids per lookup call (default 512; 256 with --store)")
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
  a->dim_opt = cmd->add_option("--dim", a->dim, "Synthetic table dim (default 128)")
                   ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20));
  cmd->add_option("--zipf", a->zipf, "Synthetic stream exponent (default 1.05)")
      ->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--steps", a->steps, "Synthetic stream length in batches (default 200)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  cmd->add_option("--shift", a->shift,
                  "Synthetic stream: re-draw the hot set at this share of the stream (0: never)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", a->seed, "Synthetic data seed (default 1)");
  add_store_options(*cmd, *a);
  return [a, &out] {
    if (a->cache_rows_opt->count() && a->cache_frac_opt->count())
      throw UsageError("give --cache-rows or --cache-frac, not both");
    if (a->predict && !a->prefetch) throw UsageError("--predict needs --prefetch");
    if (uses_store(*a)) return run_store(*a, out);
    if (a->sweep) {
      if (!a->table.empty()) throw UsageError("--sweep needs only --ids (and --rows); it reads no table");
      return run_sweep(*a, out);
    }
    const qk::EmbeddingStorage storage = qk::parse_embedding_storage(a->bits);
    const auto progress = make_progress("embed");
    const bool npz = a->table.size() >= 4 && a->table.compare(a->table.size() - 4, 4, ".npz") == 0;
    if (!a->save.empty()) {
      if (a->table.empty() || npz)
        throw UsageError("--save needs --table T.npy (the float table to quantize)");
      const qk::EmbeddingTable t = qk::quantize_embedding_file(a->table, storage, a->save, progress);
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
    const qk::EmbedWorkload work = qk::open_embed_workload(workload_options(*a, storage));
    const qk::EmbeddingTable* table = work.tables.table.get();
    const std::string& source = work.source;
    const std::vector<std::int64_t>& ids = work.ids;
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
    const qk::perf::EmbedBenchResult r =
        qk::perf::run_embed_bench(*table, *work.tables.fp32, ids, o, progress);
    finish_progress();
    print_embed_report(
        r, {source, *table, a->batch, a->bag_size, a->policy, a->prefetch, a->predict, a->repeats}, out);
    return 0;
  };
}

}  // namespace qtool
