// The inputs of an embedding-cache run read from files (or made up when none are named): the table and
// its float32 reference, the id stream, and saving a quantized table.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "quantkit/core/progress.hpp"
#include "quantkit/embed/bench_inputs.hpp"
#include "quantkit/embed/embedding_table.hpp"

namespace qk {

struct EmbedWorkloadOptions {
  // A 2-D float .npy (stored as `storage`; float32 kept as is is memory-mapped) or an .npz written by
  // save_embedding_table; empty: a synthetic rows x dim table.
  std::string table;
  std::string ids;  // an integer .npy; empty: a Zipf stream of stream_length ids over the table's rows
  EmbeddingStorage storage = EmbeddingStorage::kInt8;
  std::int64_t rows = 100000, dim = 128;  // the synthetic table
  std::int64_t stream_length = 0;         // the synthetic stream
  double zipf_exponent = 1.05;
  double shift_at = 0.0;
  // The synthetic stream's seed; the synthetic table takes seed + 1, so that the two are not correlated.
  std::uint64_t seed = 1;
};

struct EmbedWorkload {
  BenchTables tables;
  std::string source;  // the table's file, or a description of the synthetic table
  std::vector<std::int64_t> ids;
};

// The table of a .npy is quantized (or viewed) as options.storage and its float32 reference read from the
// same .npy; an .npz keeps its own storage, and its reference is its rows dequantized.
EmbedWorkload open_embed_workload(const EmbedWorkloadOptions& options);

// The ids of options.ids, or the synthetic stream over `rows` rows.
std::vector<std::int64_t> embed_ids(const EmbedWorkloadOptions& options, std::int64_t rows);

// A float .npy quantized (or converted) as `storage` and saved to `output` (an .npz, atomically), which
// may not be the input. Returns the table.
EmbeddingTable quantize_embedding_file(const std::string& npy, EmbeddingStorage storage, const std::string& output,
                                       const ProgressFn& progress = {});

}  // namespace qk
