// The tables and ids an embedding-cache run works on, built from values: the table as stored beside the
// float32 table its gather is measured against, and the row count an id stream needs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "quantkit/embed/embedding_table.hpp"

namespace qk {

struct BenchTables {
  std::shared_ptr<const EmbeddingTable> table;  // as stored
  std::shared_ptr<const EmbeddingTable> fp32;   // the float32 reference (the same object when float32)
};

// A rows x dim table of synthetic_table(rows, dim, seed) (uniform in [-1, 1)) stored as `storage`, and
// the same values in float32.
BenchTables synthetic_bench_tables(std::int64_t rows, std::int64_t dim, std::uint64_t seed,
                                   EmbeddingStorage storage);

// The float32 reference of a table already built: the table itself when it is float32, else its rows
// dequantized into a new float32 table (what a quantized table without its original can offer).
std::shared_ptr<const EmbeddingTable> dequantized_reference(std::shared_ptr<const EmbeddingTable> table);

// The rows an id stream addresses: its largest id + 1 (0 for no ids). Throws naming the first negative id.
std::int64_t rows_for_ids(std::span<const std::int64_t> ids);

}  // namespace qk
