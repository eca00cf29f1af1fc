// EmbeddingTable: building from floats in memory, viewing stored rows, and row dequantization.
#include "quantkit/embed/embedding_table.hpp"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/embed/rowwise.hpp"
#include "quantkit/kernels/aligned_vector.hpp"
#include "quantkit/kernels/convert_kernels.hpp"
#include "quantkit/kernels/rowwise_kernels.hpp"

namespace qk {

namespace {

using Bytes = kernels::AlignedVector<std::uint8_t>;

}  // namespace

void encode_embedding_rows(const float* src, std::int64_t n, std::int64_t dim, EmbeddingStorage storage,
                           std::uint8_t* dst) {
  const std::int64_t row_bytes = embedding_row_bytes(storage, dim);
  for (std::int64_t r = 0; r < n; ++r) {
    const float* row = src + r * dim;
    std::uint8_t* out = dst + r * row_bytes;
    switch (storage) {
      case EmbeddingStorage::kF32:
        std::memcpy(out, row, static_cast<std::size_t>(dim) * 4);
        break;
      case EmbeddingStorage::kF16: {
        std::vector<std::uint16_t> bits(static_cast<std::size_t>(dim));
        kernels::f32_to_f16(row, dim, bits.data());
        std::memcpy(out, bits.data(), static_cast<std::size_t>(dim) * 2);
        break;
      }
      case EmbeddingStorage::kInt8:
      case EmbeddingStorage::kInt4:
        prepack_row_half_sb(std::span<const float>(row, static_cast<std::size_t>(dim)), storage_bits(storage),
                            std::span<std::uint8_t>(out, static_cast<std::size_t>(row_bytes)));
        break;
    }
  }
}

namespace {

void read_scale_bias(const std::uint8_t* row, std::int64_t code_bytes, float& scale, float& bias) {
  std::uint16_t s, b;
  std::memcpy(&s, row + code_bytes, 2);
  std::memcpy(&b, row + code_bytes + 2, 2);
  scale = half_bits_to_float(s);
  bias = half_bits_to_float(b);
}

}  // namespace

void check_embedding_shape(const Shape& shape, const std::string& name) {
  if (shape.size() != 2)
    throw Error(name + ": an embedding table must be 2-D (rows x dim), got " + std::to_string(shape.size()) +
                "-D");
  if (shape[0] == 0) throw Error(name + ": the embedding table is empty (0 rows)");
  if (shape[1] == 0) throw Error(name + ": the embedding table has dim 0");
}

const char* to_string(EmbeddingStorage storage) {
  switch (storage) {
    case EmbeddingStorage::kF32:
      return "fp32";
    case EmbeddingStorage::kF16:
      return "fp16";
    case EmbeddingStorage::kInt8:
      return "int8";
    case EmbeddingStorage::kInt4:
      return "int4";
  }
  return "?";
}

EmbeddingStorage parse_embedding_storage(const std::string& text) {
  if (text == "fp32" || text == "32") return EmbeddingStorage::kF32;
  if (text == "fp16" || text == "16") return EmbeddingStorage::kF16;
  if (text == "int8" || text == "8") return EmbeddingStorage::kInt8;
  if (text == "int4" || text == "4") return EmbeddingStorage::kInt4;
  throw Error("unknown embedding storage '" + text + "' (expected fp32, fp16, int8, int4 or 32, 16, 8, 4)");
}

Format format_of(EmbeddingStorage storage) {
  switch (storage) {
    case EmbeddingStorage::kF32:
      return Format::kFloat32;
    case EmbeddingStorage::kF16:
      return Format::kFloat16;
    case EmbeddingStorage::kInt8:
      return Format::kUint8;  // FBGEMM's row-wise codes are unsigned, with a per-row scale and bias
    case EmbeddingStorage::kInt4:
      return Format::kUint4;
  }
  throw Error("unknown embedding storage");
}

int storage_bits(EmbeddingStorage storage) { return format_traits(format_of(storage)).code_bits; }

std::int64_t embedding_row_bytes(EmbeddingStorage storage, std::int64_t dim) {
  switch (storage) {
    case EmbeddingStorage::kF32:
      return dim * 4;
    case EmbeddingStorage::kF16:
      return dim * 2;
    case EmbeddingStorage::kInt8:
    case EmbeddingStorage::kInt4:
      return rowwise_half_sb_row_bytes(dim, storage_bits(storage));
  }
  return 0;
}

EmbeddingTable EmbeddingTable::from_floats(TensorView<const float> table, EmbeddingStorage storage) {
  check_embedding_shape(table.shape(), "embedding table");
  const auto flat = table.flat();
  EmbeddingTable t;
  t.rows_ = table.shape()[0];
  t.dim_ = table.shape()[1];
  t.storage_ = storage;
  t.row_bytes_ = embedding_row_bytes(storage, t.dim_);
  t.name_ = "embedding table";
  auto bytes = std::make_shared<Bytes>(static_cast<std::size_t>(t.rows_ * t.row_bytes_));
  encode_embedding_rows(flat.data(), t.rows_, t.dim_, storage, bytes->data());
  t.data_ = bytes->data();
  t.owner_ = bytes;
  return t;
}

EmbeddingTable EmbeddingTable::view_rows(std::shared_ptr<const void> owner, const std::uint8_t* data,
                                         std::int64_t rows, std::int64_t dim, EmbeddingStorage storage,
                                         std::string name, bool memory_mapped) {
  check_embedding_shape({rows, dim}, name);
  EmbeddingTable t;
  t.rows_ = rows;
  t.dim_ = dim;
  t.storage_ = storage;
  t.row_bytes_ = embedding_row_bytes(storage, dim);
  t.name_ = std::move(name);
  t.data_ = data;
  t.mapped_ = memory_mapped;
  t.owner_ = std::move(owner);
  return t;
}

namespace {

// One stored row into dim floats, per storage; dequantize_row and dequantize_rows share them.
void convert_f32_row(const std::uint8_t* row, std::int64_t dim, float* out) {
  std::memcpy(out, row, static_cast<std::size_t>(dim) * 4);
}
void convert_f16_row(const std::uint8_t* row, std::int64_t dim, float* out) {
  // Rows start on 2-byte boundaries (tables and slabs are 64-byte aligned, rows are 2 * dim bytes).
  kernels::f16_to_f32(reinterpret_cast<const std::uint16_t*>(row), dim, out);
}
void dequantize_int8_row(const std::uint8_t* row, std::int64_t dim, float* out) {
  float scale, bias;
  read_scale_bias(row, dim, scale, bias);
  kernels::rowwise_dequantize_u8(row, dim, scale, bias, out);
}
void dequantize_int4_row(const std::uint8_t* row, std::int64_t dim, float* out) {
  float scale, bias;
  read_scale_bias(row, (dim + 1) / 2, scale, bias);
  kernels::rowwise_dequantize_u4(row, dim, scale, bias, out);
}

template <void (*row_fn)(const std::uint8_t*, std::int64_t, float*)>
void dequantize_each(const EmbeddingTable& table, std::span<const std::int64_t> ids, float* out) {
  const std::int64_t dim = table.dim();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i + kPrefetchDistance < ids.size()) table.prefetch_row(ids[i + kPrefetchDistance]);
    row_fn(table.row_data(ids[i]), dim, out + static_cast<std::int64_t>(i) * dim);
  }
}

}  // namespace

void dequantize_stored_row(EmbeddingStorage storage, std::int64_t dim, const std::uint8_t* row, float* out) {
  switch (storage) {
    case EmbeddingStorage::kF32:
      return convert_f32_row(row, dim, out);
    case EmbeddingStorage::kF16:
      return convert_f16_row(row, dim, out);
    case EmbeddingStorage::kInt8:
      return dequantize_int8_row(row, dim, out);
    case EmbeddingStorage::kInt4:
      return dequantize_int4_row(row, dim, out);
  }
}

void EmbeddingTable::dequantize_row(std::int64_t id, float* out) const {
  dequantize_stored_row(storage_, dim_, row_data(id), out);
}

void EmbeddingTable::dequantize_rows(std::span<const std::int64_t> ids, float* out) const {
  switch (storage_) {
    case EmbeddingStorage::kF32:
      return dequantize_each<convert_f32_row>(*this, ids, out);
    case EmbeddingStorage::kF16:
      return dequantize_each<convert_f16_row>(*this, ids, out);
    case EmbeddingStorage::kInt8:
      // The whole batch in one kernel call: for a table in the CPU's caches the per-row call, dispatch
      // and float16 decode cost as much as the arithmetic (README, "Small tables").
      return kernels::rowwise_gather_u8(data_, row_bytes_, ids.data(), static_cast<std::int64_t>(ids.size()),
                                        dim_, out);
    case EmbeddingStorage::kInt4:
      return dequantize_each<dequantize_int4_row>(*this, ids, out);
  }
}

void EmbeddingTable::dequantize_row_ref(std::int64_t id, float* out) const {
  const std::uint8_t* row = row_data(id);
  switch (storage_) {
    case EmbeddingStorage::kF32:
      std::memcpy(out, row, static_cast<std::size_t>(dim_) * 4);
      return;
    case EmbeddingStorage::kF16:
      for (std::int64_t d = 0; d < dim_; ++d) {
        std::uint16_t bits;
        std::memcpy(&bits, row + 2 * d, 2);
        out[d] = half_bits_to_float(bits);
      }
      return;
    case EmbeddingStorage::kInt8:
    case EmbeddingStorage::kInt4: {
      const bool eight = storage_ == EmbeddingStorage::kInt8;
      float scale, bias;
      read_scale_bias(row, eight ? dim_ : (dim_ + 1) / 2, scale, bias);
      (eight ? kernels::rowwise_dequantize_u8_ref : kernels::rowwise_dequantize_u4_ref)(row, dim_, scale,
                                                                                        bias, out);
      return;
    }
  }
}

void EmbeddingTable::check_ids(std::span<const std::int64_t> ids, const std::string& what) const {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int64_t id = ids[i];
    if (id < 0 || id >= rows_) {
      throw Error(what + ": id " + std::to_string(id) + " at position " + std::to_string(i) +
                  (id < 0 ? " is negative" : " is out of range") + " (the table has " +
                  std::to_string(rows_) + " rows, ids must be in [0, " + std::to_string(rows_) + "))");
    }
  }
}

}  // namespace qk
