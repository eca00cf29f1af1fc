// Embedding-cache inputs from files (files/embed_workload.hpp): synthetic, .npy and saved .npz tables with
// their float32 references, recorded and synthetic ids, saving a table.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/embed/id_stream.hpp"
#include "quantkit/files/embed_workload.hpp"
#include "quantkit/io/npy.hpp"

namespace qk {
namespace {

using io::test::ScratchDir;

std::vector<float> row_of(const EmbeddingTable& t, std::int64_t r) {
  std::vector<float> out(static_cast<std::size_t>(t.dim()));
  t.dequantize_row(r, out.data());
  return out;
}

TEST(FilesEmbedWorkload, SyntheticTableAndStream) {
  EmbedWorkloadOptions o;
  o.rows = 100;
  o.dim = 8;
  o.stream_length = 500;
  o.seed = 4;
  const EmbedWorkload w = open_embed_workload(o);
  EXPECT_EQ(w.source, "synthetic 100 x 8 (uniform [-1, 1))");
  EXPECT_EQ(w.tables.table->storage(), EmbeddingStorage::kInt8);
  EXPECT_EQ(w.tables.fp32->storage(), EmbeddingStorage::kF32);
  // The table's seed is the stream's + 1.
  const std::vector<float> values = synthetic_table(100, 8, 5);
  EXPECT_EQ(row_of(*w.tables.fp32, 3), std::vector<float>(values.begin() + 24, values.begin() + 32));
  ASSERT_EQ(w.ids.size(), 500u);
  EXPECT_TRUE(std::all_of(w.ids.begin(), w.ids.end(), [](std::int64_t id) { return id >= 0 && id < 100; }));
  ZipfStreamOptions z;
  z.rows = 100;
  z.length = 500;
  z.seed = 4;
  EXPECT_EQ(w.ids, zipf_stream(z));
}

TEST(FilesEmbedWorkload, NpyTableSavedAndReopened) {
  const ScratchDir dir;
  const std::vector<float> values = synthetic_table(40, 6, 2);
  io::write_npy(dir.file("t.npy"), TensorView<const float>(values.data(), {40, 6}));
  const std::vector<std::int64_t> ids = {0, 5, 39, 5};
  io::write_npy(dir.file("ids.npy"), TensorView<const std::int64_t>(ids.data(), {4}));

  EmbedWorkloadOptions o;
  o.table = dir.file("t.npy");
  o.ids = dir.file("ids.npy");
  o.storage = EmbeddingStorage::kInt4;
  const EmbedWorkload w = open_embed_workload(o);
  EXPECT_EQ(w.source, o.table);
  EXPECT_EQ(w.ids, ids);
  EXPECT_EQ(w.tables.table->storage(), EmbeddingStorage::kInt4);
  // The reference is the .npy read as float32, not the quantized rows dequantized.
  EXPECT_EQ(row_of(*w.tables.fp32, 39), std::vector<float>(values.end() - 6, values.end()));

  const EmbeddingTable saved = quantize_embedding_file(o.table, EmbeddingStorage::kInt4, dir.file("t4.npz"));
  EXPECT_EQ(saved.rows(), 40);
  o.table = dir.file("t4.npz");
  o.storage = EmbeddingStorage::kF32;  // an .npz keeps its own storage
  const EmbedWorkload reopened = open_embed_workload(o);
  EXPECT_EQ(reopened.tables.table->storage(), EmbeddingStorage::kInt4);
  EXPECT_EQ(reopened.tables.fp32->storage(), EmbeddingStorage::kF32);
  for (std::int64_t r = 0; r < 40; ++r)
    EXPECT_EQ(row_of(*reopened.tables.fp32, r), row_of(*w.tables.table, r)) << "row " << r;

  EXPECT_THROW(quantize_embedding_file(o.table, EmbeddingStorage::kInt8, o.table), Error);  // over its input
  EXPECT_THROW(open_embed_workload({.table = dir.file("absent.npy")}), Error);
}

}  // namespace
}  // namespace qk
