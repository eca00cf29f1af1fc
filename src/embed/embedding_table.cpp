// EmbeddingTable: building (from memory or a streamed .npy), opening, saving and row dequantization.
#include "quantkit/embed/embedding_table.hpp"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/embed/rowwise.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/kernels/aligned_vector.hpp"
#include "quantkit/kernels/convert_kernels.hpp"
#include "quantkit/kernels/rowwise_kernels.hpp"

namespace qk {

namespace {

constexpr const char* kFormat = "quantkit.embedding";

using Bytes = kernels::AlignedVector<std::uint8_t>;

// Encodes rows [0, n) of a float32 block into the table's row format.
void encode_rows(const float* src, std::int64_t n, std::int64_t dim, EmbeddingStorage storage,
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

void read_scale_bias(const std::uint8_t* row, std::int64_t code_bytes, float& scale, float& bias) {
  std::uint16_t s, b;
  std::memcpy(&s, row + code_bytes, 2);
  std::memcpy(&b, row + code_bytes + 2, 2);
  scale = half_bits_to_float(s);
  bias = half_bits_to_float(b);
}

void check_shape(const Shape& shape, const std::string& name) {
  if (shape.size() != 2)
    throw Error(name + ": an embedding table must be 2-D (rows x dim), got " + std::to_string(shape.size()) +
                "-D");
  if (shape[0] == 0) throw Error(name + ": the embedding table is empty (0 rows)");
  if (shape[1] == 0) throw Error(name + ": the embedding table has dim 0");
}

}  // namespace

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

int storage_bits(EmbeddingStorage storage) {
  switch (storage) {
    case EmbeddingStorage::kF32:
      return 32;
    case EmbeddingStorage::kF16:
      return 16;
    case EmbeddingStorage::kInt8:
      return 8;
    case EmbeddingStorage::kInt4:
      return 4;
  }
  return 0;
}

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
  check_shape(table.shape(), "embedding table");
  const auto flat = table.flat();
  EmbeddingTable t;
  t.rows_ = table.shape()[0];
  t.dim_ = table.shape()[1];
  t.storage_ = storage;
  t.row_bytes_ = embedding_row_bytes(storage, t.dim_);
  t.name_ = "embedding table";
  auto bytes = std::make_shared<Bytes>(static_cast<std::size_t>(t.rows_ * t.row_bytes_));
  encode_rows(flat.data(), t.rows_, t.dim_, storage, bytes->data());
  t.data_ = bytes->data();
  t.owner_ = bytes;
  return t;
}

EmbeddingTable EmbeddingTable::from_npy(const std::string& path, EmbeddingStorage storage,
                                        const std::function<void(double)>& progress) {
  auto array = std::make_shared<io::NpyArray>(io::read_npy(path));
  check_shape(array->shape(), path);
  EmbeddingTable t;
  t.rows_ = array->shape()[0];
  t.dim_ = array->shape()[1];
  t.storage_ = storage;
  t.row_bytes_ = embedding_row_bytes(storage, t.dim_);
  t.name_ = path;
  const bool in_place = array->is_native_c_order() &&
                        ((storage == EmbeddingStorage::kF32 && array->dtype() == io::DType::kFloat32) ||
                         (storage == EmbeddingStorage::kF16 && array->dtype() == io::DType::kFloat16));
  if (in_place) {
    t.data_ = reinterpret_cast<const std::uint8_t*>(array->raw().data());
    t.mapped_ = array->raw().size() >= (std::size_t{1} << 20);
    t.owner_ = array;
    return t;
  }
  auto bytes = std::make_shared<Bytes>(static_cast<std::size_t>(t.rows_ * t.row_bytes_));
  if (array->dtype() == io::DType::kFloat32 && array->is_native_c_order()) {
    // Stream: encode a chunk of rows straight from the map, then drop the chunk's pages.
    const std::int64_t chunk_rows = std::max<std::int64_t>(1, (std::int64_t{8} << 20) / (t.dim_ * 4));
    const auto* src = reinterpret_cast<const float*>(array->raw().data());
    for (std::int64_t r = 0; r < t.rows_; r += chunk_rows) {
      const std::int64_t n = std::min(chunk_rows, t.rows_ - r);
      encode_rows(src + r * t.dim_, n, t.dim_, storage, bytes->data() + r * t.row_bytes_);
      array->release(static_cast<std::size_t>(r * t.dim_ * 4), static_cast<std::size_t>(n * t.dim_ * 4));
      if (progress) progress(static_cast<double>(r + n) / static_cast<double>(t.rows_));
    }
  } else {
    // Other dtypes or byte orders are converted in memory first (documented: use float32 for big tables).
    if (!io::dtype_is_float(array->dtype()))
      throw Error(path + ": an embedding table must hold floating-point values, got " +
                  std::string(io::dtype_name(array->dtype())));
    const std::vector<float> floats = array->to_vector<float>();
    encode_rows(floats.data(), t.rows_, t.dim_, storage, bytes->data());
    if (progress) progress(1.0);
  }
  t.data_ = bytes->data();
  t.owner_ = bytes;
  return t;
}

EmbeddingTable EmbeddingTable::open(const std::string& path) {
  const bool is_npz = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npz") == 0;
  if (!is_npz) {
    const io::NpyArray probe = io::read_npy(path);
    if (probe.dtype() == io::DType::kFloat16) return from_npy(path, EmbeddingStorage::kF16);
    return from_npy(path, EmbeddingStorage::kF32);
  }
  auto members = io::read_npz(path);
  const auto meta_it = members.find("meta");
  if (meta_it == members.end())
    throw Error(path + ": not an embedding table (no 'meta' member); write one with qtool embed --save");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(meta_it->second.as_string());
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": 'meta' is not valid JSON: " + e.what());
  }
  if (!meta.is_object() || meta.value("format", "") != kFormat)
    throw Error(path + ": not an embedding table (meta format is not '" + kFormat +
                "'); write one with qtool embed --save");
  EmbeddingTable t;
  try {
    t.storage_ = parse_embedding_storage(meta.at("storage").get<std::string>());
    t.rows_ = meta.at("rows").get<std::int64_t>();
    t.dim_ = meta.at("dim").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": bad embedding meta: " + e.what());
  }
  check_shape({t.rows_, t.dim_}, path);
  t.row_bytes_ = embedding_row_bytes(t.storage_, t.dim_);
  t.name_ = path;
  const bool quantized = t.storage_ == EmbeddingStorage::kInt8 || t.storage_ == EmbeddingStorage::kInt4;
  const char* member = quantized ? "rows" : "table";
  const auto it = members.find(member);
  if (it == members.end()) throw Error(path + ": missing member '" + member + "'");
  const io::NpyArray& array = it->second;
  const io::DType want =
      quantized ? io::DType::kUint8 : (t.storage_ == EmbeddingStorage::kF16 ? io::DType::kFloat16 : io::DType::kFloat32);
  const Shape want_shape = {t.rows_, quantized ? t.row_bytes_ : t.dim_};
  if (array.dtype() != want || array.shape() != want_shape)
    throw Error(path + ": member '" + member + "' has dtype " + io::dtype_name(array.dtype()) +
                " and the wrong shape for a " + to_string(t.storage_) + " table of " +
                std::to_string(t.rows_) + " x " + std::to_string(t.dim_));
  auto bytes = std::make_shared<Bytes>(static_cast<std::size_t>(t.rows_ * t.row_bytes_));
  if (array.is_native_c_order()) {
    std::memcpy(bytes->data(), array.raw().data(), bytes->size());
  } else if (quantized) {
    const auto v = array.to_vector<std::uint8_t>();
    std::memcpy(bytes->data(), v.data(), bytes->size());
  } else if (t.storage_ == EmbeddingStorage::kF16) {
    const auto v = array.to_vector<half>();
    std::memcpy(bytes->data(), v.data(), bytes->size());
  } else {
    const auto v = array.to_vector<float>();
    std::memcpy(bytes->data(), v.data(), bytes->size());
  }
  t.data_ = bytes->data();
  t.owner_ = bytes;
  return t;
}

void EmbeddingTable::save(const std::string& path) const {
  if (rows_ == 0) throw Error(path + ": cannot save an empty embedding table");
  const bool quantized = storage_ == EmbeddingStorage::kInt8 || storage_ == EmbeddingStorage::kInt4;
  const nlohmann::json meta = {
      {"format", kFormat},
      {"version", 1},
      {"storage", to_string(storage_)},
      {"rows", rows_},
      {"dim", dim_},
      {"row_bytes", row_bytes_},
      {"layout", quantized ? "codes (low bits first), float16 scale, float16 bias; x = code * scale + bias"
                           : "row-major floats"}};
  io::NpzWriter writer;
  const std::span<const std::byte> data(reinterpret_cast<const std::byte*>(data_),
                                        static_cast<std::size_t>(bytes()));
  if (quantized) {
    writer.add("rows", io::DType::kUint8, {rows_, row_bytes_}, data);
  } else {
    writer.add("table", storage_ == EmbeddingStorage::kF16 ? io::DType::kFloat16 : io::DType::kFloat32, {rows_, dim_},
               data);
  }
  writer.add_encoded("meta", io::encode_npy_string(meta.dump()));
  writer.write(path);
}

void EmbeddingTable::dequantize_row(std::int64_t id, float* out) const {
  const std::uint8_t* row = row_data(id);
  switch (storage_) {
    case EmbeddingStorage::kF32:
      std::memcpy(out, row, static_cast<std::size_t>(dim_) * 4);
      return;
    case EmbeddingStorage::kF16:
      // Rows start on 2-byte boundaries (the table is 64-byte aligned, rows are 2 * dim bytes).
      kernels::f16_to_f32(reinterpret_cast<const std::uint16_t*>(row), dim_, out);
      return;
    case EmbeddingStorage::kInt8: {
      float scale, bias;
      read_scale_bias(row, dim_, scale, bias);
      kernels::rowwise_dequantize_u8(row, dim_, scale, bias, out);
      return;
    }
    case EmbeddingStorage::kInt4: {
      float scale, bias;
      read_scale_bias(row, (dim_ + 1) / 2, scale, bias);
      kernels::rowwise_dequantize_u4(row, dim_, scale, bias, out);
      return;
    }
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
