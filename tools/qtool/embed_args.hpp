// The options of qtool embed, shared by its in-RAM runs (cmd_embed.cpp) and its row store runs
// (embed_store.cpp).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"

namespace qtool {

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
  // Row stores on disk (embed_store.cpp).
  std::string store, fp32_store, fp32_table, io = "auto";
  std::int64_t ram_budget = 0, compute_dim = 0, warmup_steps = 0;
  bool create = false, buffered = false;
  const CLI::App* app = nullptr;  // for counting options given (set by add_store_options)
  const CLI::Option* rows_opt = nullptr;
  const CLI::Option* dim_opt = nullptr;
  const CLI::Option* bits_opt = nullptr;
  const CLI::Option* batch_opt = nullptr;
  const CLI::Option* ram_budget_opt = nullptr;
  const CLI::Option* cache_rows_opt = nullptr;
  const CLI::Option* cache_frac_opt = nullptr;
};

// --store, --create, --ram-budget, --fp32-store, --fp32-table, --io, --buffered, --compute-dim.
void add_store_options(CLI::App& cmd, EmbedArgs& a);
// Whether the run is a row store run (--store); throws UsageError for store options without --store and
// for options that do not combine with it.
bool uses_store(const EmbedArgs& a);
// Writes a store (from --table, or the synthetic table with --create), or runs the tiers on one.
int run_store(const EmbedArgs& a, const Output& out);

}  // namespace qtool
