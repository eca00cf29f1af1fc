// Embedding-cache inputs from files (files/embed_workload.hpp).
#include "quantkit/files/embed_workload.hpp"

#include <string>

#include "quantkit/embed/id_stream.hpp"
#include "quantkit/files/embedding_file.hpp"
#include "quantkit/io/atomic_file.hpp"

namespace qk {

namespace {

bool is_npz(const std::string& path) {
  return path.size() >= 4 && path.compare(path.size() - 4, 4, ".npz") == 0;
}

}  // namespace

std::vector<std::int64_t> embed_ids(const EmbedWorkloadOptions& o, std::int64_t rows) {
  if (!o.ids.empty()) return read_ids(o.ids);
  ZipfStreamOptions z;
  z.rows = rows;
  z.length = o.stream_length;
  z.exponent = o.zipf_exponent;
  z.seed = o.seed;
  z.shift_at = o.shift_at;
  return zipf_stream(z);
}

EmbedWorkload open_embed_workload(const EmbedWorkloadOptions& o) {
  EmbedWorkload w;
  if (o.table.empty()) {
    w.tables = synthetic_bench_tables(o.rows, o.dim, o.seed + 1, o.storage);
    w.source = "synthetic " + std::to_string(o.rows) + " x " + std::to_string(o.dim) + " (uniform [-1, 1))";
  } else if (is_npz(o.table)) {
    w.tables.table = std::make_shared<EmbeddingTable>(open_embedding_table(o.table));
    w.tables.fp32 = dequantized_reference(w.tables.table);
    w.source = o.table;
  } else {
    w.tables.table = std::make_shared<EmbeddingTable>(embedding_table_from_npy(o.table, o.storage));
    w.tables.fp32 =
        o.storage == EmbeddingStorage::kF32
            ? w.tables.table
            : std::make_shared<EmbeddingTable>(embedding_table_from_npy(o.table, EmbeddingStorage::kF32));
    w.source = o.table;
  }
  w.ids = embed_ids(o, w.tables.table->rows());
  return w;
}

EmbeddingTable quantize_embedding_file(const std::string& npy, EmbeddingStorage storage, const std::string& output,
                                       const ProgressFn& progress) {
  io::check_output_differs(output, {npy});
  const EmbeddingTable t = embedding_table_from_npy(npy, storage, progress);
  save_embedding_table(t, output);
  return t;
}

}  // namespace qk
