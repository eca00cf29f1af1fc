// An embedding table (rows x dim) stored as float32, float16, or row-wise quantized INT8 / INT4.
//
// Row layouts (bytes per row for dim d):
//   fp32  d * 4                      the floats
//   fp16  d * 2                      IEEE binary16, round to nearest even
//   int8  d + 4                      d uint8 codes, float16 scale, float16 bias
//   int4  ceil(d / 2) + 4            codes two per byte (low nibble first), float16 scale, float16 bias
// The quantized rows are FBGEMM's FusedNBitRowwiseQuantizedSBHalf layout (embed/rowwise.hpp): value =
// code * scale + bias, with bias = the row minimum. float16 scale/bias (4 bytes, not FBGEMM's 8-byte
// float32 header of its older 8-bit format) is what keeps INT8 under 0.27x of FP32 at dim 64.
//
// A table views rows it owns (built from floats) or rows owned elsewhere (a memory-mapped .npy: the cold
// tier; opening and saving tables: files/embedding_file.hpp). The table is immutable: any number of
// threads may read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "quantkit/core/format.hpp"
#include "quantkit/core/tensor_view.hpp"

namespace qk {

enum class EmbeddingStorage { kF32, kF16, kInt8, kInt4 };

// Rows ahead whose loads are started while a row is dequantized: enough to keep several DRAM misses in
// flight (rows of a big table are cold; one at a time, each costs a full memory latency). The INT8 gather
// kernel uses the same distance (kernels::kRowwiseGatherPrefetch).
inline constexpr std::size_t kPrefetchDistance = 8;

const char* to_string(EmbeddingStorage storage);  // "fp32", "fp16", "int8", "int4"
// Parses "fp32" / "fp16" / "int8" / "int4" or a bit width "32" / "16" / "8" / "4".
EmbeddingStorage parse_embedding_storage(const std::string& text);
// The format-table row of a storage's codes or words: fp32, fp16, and the unsigned row-wise codes uint8 and
// uint4 (each row also holds its float16 scale and bias). The storage names above ("int8", "int4") are
// the ones table files and qtool have always used.
Format format_of(EmbeddingStorage storage);
int storage_bits(EmbeddingStorage storage);
std::int64_t embedding_row_bytes(EmbeddingStorage storage, std::int64_t dim);

// Encodes n rows of dim float32 values (row-major at src) into `storage`'s row layout at dst
// (n * embedding_row_bytes bytes).
void encode_embedding_rows(const float* src, std::int64_t n, std::int64_t dim, EmbeddingStorage storage,
                           std::uint8_t* dst);
// Dequantizes (or converts) one stored row of `storage` (at any 2-byte aligned address) into dim floats
// with the dispatched SIMD kernel: what EmbeddingTable::dequantize_row does to the table's own rows.
void dequantize_stored_row(EmbeddingStorage storage, std::int64_t dim, const std::uint8_t* row, float* out);
// Throws a qk::Error naming `name` unless shape is 2-D with at least one row and one column.
void check_embedding_shape(const Shape& shape, const std::string& name);

class EmbeddingTable {
 public:
  EmbeddingTable() = default;

  // Quantizes (or converts) a rows x dim float32 table held in memory.
  static EmbeddingTable from_floats(TensorView<const float> table, EmbeddingStorage storage);
  // A table over rows x row_bytes stored bytes in `storage`'s row layout at `data`, kept alive by `owner`
  // (a buffer or a memory map). `name` is used in messages. Throws on an empty or 0-dim shape.
  static EmbeddingTable view_rows(std::shared_ptr<const void> owner, const std::uint8_t* data,
                                  std::int64_t rows, std::int64_t dim, EmbeddingStorage storage,
                                  std::string name, bool memory_mapped);

  std::int64_t rows() const { return rows_; }
  std::int64_t dim() const { return dim_; }
  EmbeddingStorage storage() const { return storage_; }
  std::int64_t row_bytes() const { return row_bytes_; }
  std::int64_t bytes() const { return rows_ * row_bytes_; }     // as stored
  std::int64_t fp32_bytes() const { return rows_ * dim_ * 4; }  // the same table in float32
  bool memory_mapped() const { return mapped_; }
  const std::string& name() const { return name_; }

  // The stored bytes of one row (no range check).
  const std::uint8_t* row_data(std::int64_t id) const { return data_ + id * row_bytes_; }
  // Dequantizes (or converts) one row into dim floats with the dispatched SIMD kernel; no range check.
  void dequantize_row(std::int64_t id, float* out) const;
  // dequantize_row for every id: row ids[i] into out + i * dim, the loads of the row kPrefetchDistance
  // ids ahead started early; the storage is looked at once per call, not per row. No range check.
  void dequantize_rows(std::span<const std::int64_t> ids, float* out) const;
  // Asks the CPU to start loading a row's cache lines (a hint; lets the loads of several cold rows overlap).
  void prefetch_row(std::int64_t id) const {
    const std::uint8_t* row = row_data(id);
    for (std::int64_t offset = 0; offset < row_bytes_; offset += 64) __builtin_prefetch(row + offset);
    __builtin_prefetch(row + row_bytes_ - 1);
  }
  // The scalar reference of dequantize_row (same bits).
  void dequantize_row_ref(std::int64_t id, float* out) const;

  // Throws a qk::Error naming `what` and the first id outside [0, rows).
  void check_ids(std::span<const std::int64_t> ids, const std::string& what) const;

 private:
  std::shared_ptr<const void> owner_;  // keeps the bytes (a vector or a memory map) alive
  const std::uint8_t* data_ = nullptr;
  std::int64_t rows_ = 0;
  std::int64_t dim_ = 0;
  std::int64_t row_bytes_ = 0;
  EmbeddingStorage storage_ = EmbeddingStorage::kF32;
  bool mapped_ = false;
  std::string name_;
};

}  // namespace qk
