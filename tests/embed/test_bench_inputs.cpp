// Tables and ids of an embedding-cache run (embed/bench_inputs.hpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/embed/bench_inputs.hpp"
#include "quantkit/embed/id_stream.hpp"

namespace qk {
namespace {

std::vector<float> row_of(const EmbeddingTable& t, std::int64_t r) {
  std::vector<float> out(static_cast<std::size_t>(t.dim()));
  t.dequantize_row(r, out.data());
  return out;
}

TEST(BenchInputs, RowsForIdsIsTheLargestIdPlusOne) {
  EXPECT_EQ(rows_for_ids(std::vector<std::int64_t>{3, 0, 7, 7}), 8);
  EXPECT_EQ(rows_for_ids(std::vector<std::int64_t>{0}), 1);
  EXPECT_EQ(rows_for_ids({}), 0);
  try {
    rows_for_ids(std::vector<std::int64_t>{1, -3, -4});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "ids: negative id -3");
  }
}

TEST(BenchInputs, SyntheticTablesHoldTheSyntheticValues) {
  const std::vector<float> values = synthetic_table(50, 8, 3);
  const BenchTables t = synthetic_bench_tables(50, 8, 3, EmbeddingStorage::kInt8);
  EXPECT_EQ(t.table->storage(), EmbeddingStorage::kInt8);
  EXPECT_EQ(t.fp32->storage(), EmbeddingStorage::kF32);
  EXPECT_EQ(t.table->rows(), 50);
  EXPECT_EQ(t.table->dim(), 8);
  for (std::int64_t r = 0; r < 50; ++r)
    EXPECT_EQ(row_of(*t.fp32, r), std::vector<float>(values.begin() + r * 8, values.begin() + (r + 1) * 8));
  const BenchTables f = synthetic_bench_tables(50, 8, 3, EmbeddingStorage::kF32);
  EXPECT_EQ(f.table, f.fp32);  // one table serves both
}

TEST(BenchInputs, DequantizedReferenceHoldsTheStoredRows) {
  const BenchTables t = synthetic_bench_tables(20, 6, 1, EmbeddingStorage::kInt4);
  const auto ref = dequantized_reference(t.table);
  EXPECT_EQ(ref->storage(), EmbeddingStorage::kF32);
  for (std::int64_t r = 0; r < 20; ++r) EXPECT_EQ(row_of(*ref, r), row_of(*t.table, r)) << "row " << r;
  EXPECT_EQ(dequantized_reference(t.fp32), t.fp32);
}

}  // namespace
}  // namespace qk
