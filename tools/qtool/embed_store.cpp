// qtool embed --store: row stores on disk and the RAM cache in front of them (library: files/row_store.hpp;
// measurements: perf/store_bench.hpp).
#include <memory>

#include "embed_args.hpp"
#include "perf/store_bench.hpp"
#include "quantkit/embed/id_stream.hpp"
#include "quantkit/files/embedding_file.hpp"
#include "quantkit/files/row_store.hpp"
#include "store_report.hpp"

namespace qtool {

void add_store_options(CLI::App& cmd_ref, EmbedArgs& args) {
  CLI::App* cmd = &cmd_ref;
  EmbedArgs* a = &args;
  a->app = cmd;
  cmd->add_option(
         "--store", a->store,
         "Row store on disk: run the disk -> RAM cache tiers on it; with --table or --create, write it")
      ->type_name("TEXT:FILE");
  cmd->add_flag("--create", a->create,
                "With --store: write the seeded synthetic --rows x --dim table, streamed");
  a->ram_budget_opt =
      cmd->add_option("--ram-budget", a->ram_budget,
                      "With --store: the cache's bytes (slab, map, policy), e.g. 1.5GB or 64MiB; "
                      "default: room for --cache-frac of the rows")
          ->transform(CLI::AsSizeValue(true));
  cmd->add_option(
         "--fp32-store", a->fp32_store,
         "With --store: also run a float32 store (or .npy) with the same cache policy and byte budget")
      ->type_name("TEXT:FILE");
  cmd->add_option(
         "--fp32-table", a->fp32_table,
         "With --store: also time a float32 .npy read through mmap, from a cold and a warm page cache")
      ->type_name("TEXT:FILE");
  cmd->add_option("--io", a->io, "With --store: auto (io_uring if it runs here), io_uring or pread")
      ->check(CLI::IsMember({"auto", "io_uring", "pread"}));
  cmd->add_flag("--buffered", a->buffered, "With --store: read through the page cache instead of direct I/O");
  cmd->add_option("--warmup-steps", a->warmup_steps,
                  "With --store: batches run through the caches untimed before the --steps that every path "
                  "times (steady state; with --ids, the file's first batches)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 30));
  cmd->add_option("--compute-dim", a->compute_dim,
                  "With --prefetch: width of the dense layer after each batch (default: the table's dim)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 16));
}

bool uses_store(const EmbedArgs& a) {
  const auto given = [&](const char* name) { return a.app->count(name) > 0; };
  if (a.store.empty()) {
    for (const char* name : {"--create", "--ram-budget", "--fp32-store", "--fp32-table", "--io", "--buffered",
                             "--warmup-steps", "--compute-dim"})
      if (given(name)) throw UsageError(std::string(name) + " needs --store");
    return false;
  }
  for (const char* name : {"--sweep", "--save", "--cache-rows", "--predict", "--bag-size", "--repeats",
                           "--profile-frac", "--fractions"})
    if (given(name))
      throw UsageError(
          std::string(name) + " does not apply with --store" +
          (std::string(name) == "--cache-rows" ? " (size the cache with --ram-budget or --cache-frac)" : ""));
  if (given("--ram-budget") && given("--cache-frac"))
    throw UsageError("give --ram-budget or --cache-frac, not both");
  if (a.create && !a.table.empty())
    throw UsageError("give --table (write the store from it) or --create (the synthetic table), not both");
  const bool writing = a.create || !a.table.empty();
  if (writing) {
    for (const char* name : {"--ids", "--ram-budget", "--cache-frac", "--fp32-store", "--fp32-table",
                             "--prefetch", "--warmup-steps", "--steps"})
      if (given(name)) throw UsageError(std::string(name) + " runs a workload; writing a store runs none");
  }
  return true;
}

// --store: write a store (from --table, or the synthetic table with --create), or run the tiers on one.
int run_store(const EmbedArgs& a, const Output& out) {
  const qk::EmbeddingStorage storage = qk::parse_embedding_storage(a.bits);
  const auto progress = make_progress("embed");
  if (!a.table.empty() || a.create) {
    const qk::RowStoreHeader h =
        !a.table.empty() ? qk::create_row_store_from_npy(a.table, storage, a.store, progress)
                         : qk::create_synthetic_row_store(a.rows, a.dim, a.seed, storage, a.store, progress);
    finish_progress();
    print_store_written(h, a.store, out);
    return 0;
  }
  qk::perf::StoreBenchOptions o;
  o.store = a.store;
  o.fp32_store = a.fp32_store;
  o.fp32_table = a.fp32_table;
  o.ram_budget = a.ram_budget;
  o.cache_fraction = a.cache_frac;
  o.policy = qk::parse_cache_policy(a.policy);
  o.batch = a.batch_opt->count() ? a.batch : 256;
  o.io.backend = qk::io::parse_read_backend(a.io);
  o.io.direct = !a.buffered;
  o.prefetch = a.prefetch;
  o.compute_dim = a.compute_dim;
  o.warmup_batches = a.warmup_steps;
  qk::RowStoreOptions check;
  if (a.dim_opt->count()) check.expect_dim = a.dim;
  if (a.bits_opt->count()) check.expect_storage = storage;
  const auto store = qk::RowStore::open(a.store, check);
  std::vector<std::int64_t> ids;
  if (!a.ids.empty()) {
    ids = qk::read_ids(a.ids);
  } else {
    qk::ZipfStreamOptions z;
    z.rows = store->rows();
    z.length = (a.warmup_steps + a.steps) * o.batch;
    z.exponent = a.zipf;
    z.seed = a.seed;
    z.shift_at = a.shift;
    ids = qk::zipf_stream(z);
  }
  const qk::perf::StoreBenchResult r = qk::perf::run_store_bench(o, ids, progress);
  finish_progress();
  print_store_report(r, o, out);
  return 0;
}

}  // namespace qtool
