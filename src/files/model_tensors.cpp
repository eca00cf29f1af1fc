// The tensors of a GGUF or safetensors model as float row sources (model_tensors.hpp).
#include "model_tensors.hpp"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "quantkit/core/error.hpp"
#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/files/safetensors_quant.hpp"

namespace qk::detail {

namespace {

// The ggml type of a GGUF tensor, if quantkit reads it.
std::optional<ggml::Type> readable(std::uint32_t id) {
  for (const ggml::TypeTraits& t : ggml::types())
    if (static_cast<std::uint32_t>(t.type) == id && t.can_dequantize) return t.type;
  return std::nullopt;
}

void add_gguf(ModelTensors& m) {
  m.gguf = std::make_unique<io::GgufFile>(io::GgufFile::open(m.path));
  const bool mapped = m.gguf->owner() != nullptr;
  for (const io::GgufTensor& t : m.gguf->tensors()) {
    const std::optional<ggml::Type> from = readable(t.type);
    const io::GgmlTypeInfo* info = io::ggml_type_info(t.type);
    if (!from)
      throw Error(m.path + ":" + t.name + ": quantkit cannot read type " + info->name +
                  " (it reads f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0 and q2_K .. q6_K)");
    ModelTensor s;
    s.name = t.name;
    s.where = m.path + ":" + t.name;
    s.ne = t.ne;
    s.from = info->name;
    s.bytes = t.data.size();
    s.block_quantized = info->block_size > 1;
    const ggml::Type type = *from;
    const std::int64_t n = s.row_length();
    const std::int64_t in_row = n == 0 ? 0 : ggml::row_bytes(type, n);
    const io::GgufTensor* tensor = &t;
    s.read_rows = [tensor, type, n, in_row, mapped](std::int64_t first, std::int64_t rows, float* out) {
      const std::byte* base = tensor->data.data() + first * in_row;
      for (std::int64_t r = 0; r < rows; ++r) ggml::dequantize_row(type, base + r * in_row, n, out + r * n);
      if (mapped) io::release_mapped_pages({base, static_cast<std::size_t>(rows * in_row)});
    };
    m.tensors.push_back(std::move(s));
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(m.path, ec);
  m.file_bytes = ec ? 0 : static_cast<std::uint64_t>(size);
}

void add_safetensors(ModelTensors& m) {
  m.safetensors = std::make_unique<io::SafetensorsCheckpoint>(io::SafetensorsCheckpoint::open(m.path));
  const io::SafetensorsCheckpoint& model = *m.safetensors;
  for (const auto& entry : model.tensors()) {
    const io::StTensor& t = *entry.tensor;
    const std::string where = model.shards()[entry.shard].name() + ":" + t.name;
    if (!io::st_dtype_is_float(t.dtype))
      throw Error(where + ": " + io::st_dtype_name(t.dtype) +
                  " is not a floating type (GGUF's plain tensors are floats; drop the tensor first)");
    if (t.shape.size() > 4)
      throw Error(where + ": " + std::to_string(t.shape.size()) + " dimensions, GGUF holds 4");
    ModelTensor s;
    s.name = t.name;
    s.where = where;
    s.ne.assign(t.shape.rbegin(), t.shape.rend());
    if (s.ne.empty()) s.ne = {1};
    s.from = io::st_dtype_name(t.dtype);
    s.bytes = t.data.size();
    const std::int64_t n = s.row_length();
    const bool mapped = model.shards()[entry.shard].owner() != nullptr;
    const std::size_t esize = io::st_dtype_size(t.dtype);
    const io::StTensor* tensor = &t;
    s.read_rows = [tensor, n, mapped, esize](std::int64_t first, std::int64_t rows, float* out) {
      io::st_to_float(*tensor, first * n, std::span<float>(out, static_cast<std::size_t>(rows * n)));
      if (mapped)
        io::release_mapped_pages(tensor->data.subspan(static_cast<std::size_t>(first * n) * esize,
                                                      static_cast<std::size_t>(rows * n) * esize));
    };
    m.tensors.push_back(std::move(s));
  }
  m.file_bytes = model.file_bytes();
}

}  // namespace

std::int64_t ModelTensor::row_count() const {
  if (ne.empty()) return 1;
  std::int64_t n = ne[0] == 0 ? 0 : 1;
  for (std::size_t i = 1; i < ne.size(); ++i) n *= ne[i];
  return n;
}

const ModelTensor* ModelTensors::find(const std::string& name) const {
  for (const ModelTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

ModelTensors open_model_tensors(const std::string& path) {
  ModelTensors m;
  m.path = path;
  if (path.ends_with(".gguf"))
    add_gguf(m);
  else if (is_safetensors_path(path))
    add_safetensors(m);
  else
    throw Error(path + ": not a model file (expected .gguf, .safetensors or .safetensors.index.json)");
  return m;
}

const TensorImportance* find_importance(const ModelTensor& t, const ImportanceMap& map) {
  const auto it = map.find(t.name);
  if (it == map.end()) return nullptr;
  const TensorImportance& imp = it->second;
  const std::int64_t rows_per_matrix = t.ne.size() >= 2 ? t.ne[1] : 1;
  const std::int64_t matrices = rows_per_matrix == 0 ? 0 : t.row_count() / rows_per_matrix;
  if (imp.columns != t.row_length())
    throw Error(t.where + ": the importance has " + std::to_string(imp.columns) +
                " columns, the tensor's rows " + std::to_string(t.row_length()));
  if (static_cast<std::int64_t>(imp.values.size()) != imp.columns * std::max<std::int64_t>(1, matrices) &&
      static_cast<std::int64_t>(imp.values.size()) != imp.columns)
    throw Error(t.where + ": the importance holds " +
                std::to_string(imp.values.size() / std::max<std::int64_t>(1, imp.columns)) +
                " vector(s), the tensor " + std::to_string(matrices) + " matrices");
  return &imp;
}

const float* row_importance(const TensorImportance* importance, const ModelTensor& t, std::int64_t row) {
  if (!importance) return nullptr;
  const std::int64_t rows_per_matrix = t.ne.size() >= 2 ? std::max<std::int64_t>(1, t.ne[1]) : 1;
  const std::int64_t vectors =
      static_cast<std::int64_t>(importance->values.size()) / std::max<std::int64_t>(1, importance->columns);
  const std::int64_t m = vectors <= 1 ? 0 : row / rows_per_matrix;
  return importance->values.data() + m * importance->columns;
}

int thread_count(int requested) {
  return requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::int64_t rows_per_chunk(std::int64_t row) {
  return std::max<std::int64_t>(1, (std::int64_t{1} << 20) / std::max<std::int64_t>(1, row));
}

}  // namespace qk::detail
