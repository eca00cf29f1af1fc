// Embedding tables and id streams in files. A float32 (or float16) .npy used as stored is memory-mapped
// and viewed in place: it is never loaded, the OS pages rows in on demand (the cold tier). Quantizing a
// .npy streams it in chunks and drops each chunk's pages, so only the quantized table (4-8x smaller)
// becomes resident.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quantkit/core/progress.hpp"
#include "quantkit/embed/embedding_table.hpp"

namespace qk {

inline constexpr const char* kEmbeddingTableFormat = "quantkit.embedding";

// From a 2-D .npy of float32 / float16 (any float dtype is accepted and converted). A float32 .npy
// stored as fp32 (float16 as fp16) is viewed in place through the memory map.
EmbeddingTable embedding_table_from_npy(const std::string& path, EmbeddingStorage storage,
                                        const ProgressFn& progress = {});
// Opens a table: a .npz written by save_embedding_table, or a .npy stored as it is (float32 or float16).
// An .npz that is not an embedding table throws a FileError (FileRemedy::kSaveEmbeddingTable).
EmbeddingTable open_embedding_table(const std::string& path);
// Writes the table as an .npz: member "rows" (uint8 [rows, row_bytes]) or "table" (float32/float16
// [rows, dim]), and "meta" (JSON: format "quantkit.embedding", storage, rows, dim, row_bytes). Atomic.
void save_embedding_table(const EmbeddingTable& table, const std::string& path);

// The ids of an integer .npy (any integer dtype, any shape, flattened in C order) as int64. Throws a
// qk::Error naming the file for a non-integer dtype or an empty array. Range checks are the table's.
std::vector<std::int64_t> read_ids(const std::string& path);

}  // namespace qk
