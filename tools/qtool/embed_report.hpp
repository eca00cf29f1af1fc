// The reports of qtool embed, as text or JSON on stdout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "perf/embed_bench.hpp"
#include "quantkit/embed/cache_replay.hpp"
#include "quantkit/embed/embedding_table.hpp"

namespace qtool {

// What the run was asked to do, for the report's labels.
struct EmbedRun {
  std::string source;  // the table's file, or the synthetic table's description
  const qk::EmbeddingTable& table;
  std::int64_t batch = 0, bag_size = 1;
  std::string policy;
  bool prefetch = false, predict = false;
  int repeats = 1;
};

void print_embed_report(const qk::perf::EmbedBenchResult& r, const EmbedRun& run, const Output& out);
void print_sweep(const std::vector<qk::SweepPoint>& points, std::int64_t rows, std::size_t ids,
                 double profile_fraction, const Output& out);

}  // namespace qtool
