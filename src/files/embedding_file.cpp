// Embedding tables and id streams in files: .npy tables viewed through the memory map or streamed into a
// quantized table, the table .npz (meta + rows), and recorded ids.
#include "quantkit/files/embedding_file.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/files/file_error.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/kernels/aligned_vector.hpp"

namespace qk {

namespace {

using Bytes = kernels::AlignedVector<std::uint8_t>;

}  // namespace

namespace {

EmbeddingTable table_from_array(std::shared_ptr<const io::NpyArray> array, const std::string& path,
                                EmbeddingStorage storage, const ProgressFn& progress) {
  check_embedding_shape(array->shape(), path);
  const std::int64_t rows = array->shape()[0];
  const std::int64_t dim = array->shape()[1];
  const std::int64_t row_bytes = embedding_row_bytes(storage, dim);
  const bool in_place = array->is_native_c_order() &&
                        ((storage == EmbeddingStorage::kF32 && array->dtype() == io::DType::kFloat32) ||
                         (storage == EmbeddingStorage::kF16 && array->dtype() == io::DType::kFloat16));
  if (in_place) {
    const auto* data = reinterpret_cast<const std::uint8_t*>(array->raw().data());
    const bool mapped = array->raw().size() >= (std::size_t{1} << 20);
    return EmbeddingTable::view_rows(array, data, rows, dim, storage, path, mapped);
  }
  auto bytes = std::make_shared<Bytes>(static_cast<std::size_t>(rows * row_bytes));
  if (array->dtype() == io::DType::kFloat32 && array->is_native_c_order()) {
    // Stream: encode a chunk of rows straight from the map, then drop the chunk's pages.
    const std::int64_t chunk_rows = std::max<std::int64_t>(1, (std::int64_t{8} << 20) / (dim * 4));
    const auto* src = reinterpret_cast<const float*>(array->raw().data());
    for (std::int64_t r = 0; r < rows; r += chunk_rows) {
      const std::int64_t n = std::min(chunk_rows, rows - r);
      encode_embedding_rows(src + r * dim, n, dim, storage, bytes->data() + r * row_bytes);
      array->release(static_cast<std::size_t>(r * dim * 4), static_cast<std::size_t>(n * dim * 4));
      if (progress) progress(static_cast<double>(r + n) / static_cast<double>(rows));
    }
  } else {
    // Other dtypes or byte orders are converted in memory first (documented: use float32 for big tables).
    if (!io::dtype_is_float(array->dtype()))
      throw Error(path + ": an embedding table must hold floating-point values, got " +
                  std::string(io::dtype_name(array->dtype())));
    const std::vector<float> floats = array->to_vector<float>();
    encode_embedding_rows(floats.data(), rows, dim, storage, bytes->data());
    if (progress) progress(1.0);
  }
  const std::uint8_t* data = bytes->data();
  return EmbeddingTable::view_rows(std::move(bytes), data, rows, dim, storage, path, false);
}

}  // namespace

EmbeddingTable embedding_table_from_npy(const std::string& path, EmbeddingStorage storage,
                                        const ProgressFn& progress) {
  return table_from_array(std::make_shared<const io::NpyArray>(io::read_npy(path)), path, storage, progress);
}

EmbeddingTable open_embedding_table(const std::string& path) {
  const bool is_npz = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npz") == 0;
  if (!is_npz) {
    auto array = std::make_shared<const io::NpyArray>(io::read_npy(path));
    const bool f16 = array->dtype() == io::DType::kFloat16;
    return table_from_array(std::move(array), path, f16 ? EmbeddingStorage::kF16 : EmbeddingStorage::kF32,
                            {});
  }
  auto members = io::read_npz(path);
  const auto meta_it = members.find("meta");
  if (meta_it == members.end())
    throw FileError(path + ": not an embedding table (no 'meta' member)", FileRemedy::kSaveEmbeddingTable);
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(meta_it->second.as_string());
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": 'meta' is not valid JSON: " + e.what());
  }
  if (!meta.is_object() || meta.value("format", "") != kEmbeddingTableFormat)
    throw FileError(path + ": not an embedding table (meta format is not '" + kEmbeddingTableFormat + "')",
                    FileRemedy::kSaveEmbeddingTable);
  EmbeddingStorage storage = EmbeddingStorage::kF32;
  std::int64_t rows = 0, dim = 0;
  try {
    storage = parse_embedding_storage(meta.at("storage").get<std::string>());
    rows = meta.at("rows").get<std::int64_t>();
    dim = meta.at("dim").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": bad embedding meta: " + e.what());
  }
  check_embedding_shape({rows, dim}, path);
  const std::int64_t row_bytes = embedding_row_bytes(storage, dim);
  const bool quantized = storage == EmbeddingStorage::kInt8 || storage == EmbeddingStorage::kInt4;
  const char* member = quantized ? "rows" : "table";
  const auto it = members.find(member);
  if (it == members.end()) throw Error(path + ": missing member '" + member + "'");
  const io::NpyArray& array = it->second;
  const io::DType want =
      quantized ? io::DType::kUint8
                : (storage == EmbeddingStorage::kF16 ? io::DType::kFloat16 : io::DType::kFloat32);
  const Shape want_shape = {rows, quantized ? row_bytes : dim};
  if (array.dtype() != want || array.shape() != want_shape)
    throw Error(path + ": member '" + member + "' has dtype " + io::dtype_name(array.dtype()) +
                " and the wrong shape for a " + to_string(storage) + " table of " + std::to_string(rows) +
                " x " + std::to_string(dim));
  auto bytes = std::make_shared<Bytes>(static_cast<std::size_t>(rows * row_bytes));
  if (array.is_native_c_order()) {
    std::memcpy(bytes->data(), array.raw().data(), bytes->size());
  } else if (quantized) {
    const auto v = array.to_vector<std::uint8_t>();
    std::memcpy(bytes->data(), v.data(), bytes->size());
  } else if (storage == EmbeddingStorage::kF16) {
    const auto v = array.to_vector<half>();
    std::memcpy(bytes->data(), v.data(), bytes->size());
  } else {
    const auto v = array.to_vector<float>();
    std::memcpy(bytes->data(), v.data(), bytes->size());
  }
  const std::uint8_t* data = bytes->data();
  return EmbeddingTable::view_rows(std::move(bytes), data, rows, dim, storage, path, false);
}

void save_embedding_table(const EmbeddingTable& table, const std::string& path) {
  if (table.rows() == 0) throw Error(path + ": cannot save an empty embedding table");
  const EmbeddingStorage storage = table.storage();
  const std::int64_t rows = table.rows(), dim = table.dim();
  const bool quantized = storage == EmbeddingStorage::kInt8 || storage == EmbeddingStorage::kInt4;
  const nlohmann::json meta = {
      {"format", kEmbeddingTableFormat},
      {"version", 1},
      {"storage", to_string(storage)},
      {"rows", rows},
      {"dim", dim},
      {"row_bytes", table.row_bytes()},
      {"layout", quantized ? "codes (low bits first), float16 scale, float16 bias; x = code * scale + bias"
                           : "row-major floats"}};
  io::NpzWriter writer;
  const std::span<const std::byte> data(reinterpret_cast<const std::byte*>(table.row_data(0)),
                                        static_cast<std::size_t>(table.bytes()));
  if (quantized) {
    writer.add("rows", io::DType::kUint8, {rows, table.row_bytes()}, data);
  } else {
    writer.add("table", storage == EmbeddingStorage::kF16 ? io::DType::kFloat16 : io::DType::kFloat32,
               {rows, dim}, data);
  }
  writer.add_encoded("meta", io::encode_npy_string(meta.dump()));
  writer.write(path);
}

std::vector<std::int64_t> read_ids(const std::string& path) {
  const io::NpyArray array = io::read_npy(path);
  switch (array.dtype()) {
    case io::DType::kInt8:
    case io::DType::kUint8:
    case io::DType::kInt16:
    case io::DType::kUint16:
    case io::DType::kInt32:
    case io::DType::kUint32:
    case io::DType::kInt64:
      break;
    case io::DType::kUint64: {
      const auto v = array.to_vector<std::uint64_t>();
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] > static_cast<std::uint64_t>(INT64_MAX))
          throw Error(path + ": id " + std::to_string(v[i]) + " at position " + std::to_string(i) +
                      " does not fit in int64");
      }
      break;
    }
    default:
      throw Error(path + ": ids must be integers, got dtype " + std::string(io::dtype_name(array.dtype())));
  }
  if (array.numel() == 0) throw Error(path + ": the id file is empty");
  return array.to_vector<std::int64_t>();
}

}  // namespace qk
