// Tables and ids of an embedding-cache run (embed/bench_inputs.hpp).
#include "quantkit/embed/bench_inputs.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/embed/id_stream.hpp"

namespace qk {

BenchTables synthetic_bench_tables(std::int64_t rows, std::int64_t dim, std::uint64_t seed,
                                   EmbeddingStorage storage) {
  const std::vector<float> values = synthetic_table(rows, dim, seed);
  const TensorView<const float> view(values.data(), {rows, dim});
  BenchTables t;
  t.table = std::make_shared<EmbeddingTable>(EmbeddingTable::from_floats(view, storage));
  t.fp32 = storage == EmbeddingStorage::kF32
               ? t.table
               : std::make_shared<EmbeddingTable>(EmbeddingTable::from_floats(view, EmbeddingStorage::kF32));
  return t;
}

std::shared_ptr<const EmbeddingTable> dequantized_reference(std::shared_ptr<const EmbeddingTable> table) {
  if (table->storage() == EmbeddingStorage::kF32) return table;
  std::vector<float> values(static_cast<std::size_t>(table->rows() * table->dim()));
  for (std::int64_t r = 0; r < table->rows(); ++r) table->dequantize_row(r, values.data() + r * table->dim());
  return std::make_shared<EmbeddingTable>(EmbeddingTable::from_floats(
      TensorView<const float>(values.data(), {table->rows(), table->dim()}), EmbeddingStorage::kF32));
}

std::int64_t rows_for_ids(std::span<const std::int64_t> ids) {
  std::int64_t m = -1;
  for (const std::int64_t id : ids) {
    if (id < 0) throw Error("ids: negative id " + std::to_string(id));
    m = std::max(m, id);
  }
  return m + 1;
}

}  // namespace qk
