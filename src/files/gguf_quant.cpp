// Whole models into GGUF (files/gguf_quant.hpp): choose each tensor's type, then stream it row chunk by
// row chunk through ggml's reference quantizers into the GGUF writer.
#include "quantkit/files/gguf_quant.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>

#include "quantkit/core/error.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/safetensors_checkpoint.hpp"

namespace qk {

namespace {

// One input tensor, whatever the container: its name, ggml-order dimensions, and a reader of float rows.
struct Source {
  std::string name;
  std::vector<std::int64_t> ne;
  std::string from;
  std::uint64_t bytes = 0;
  bool block_quantized = false;
  // Rows [first, first + rows) as floats into out (rows * ne[0] values), then drops their input pages.
  std::function<void(std::int64_t first, std::int64_t rows, float* out)> read_rows;
};

std::int64_t row_length(const std::vector<std::int64_t>& ne) { return ne.empty() ? 1 : ne[0]; }

// Rows of ne[0] elements (a rank-0 tensor is one row of one element).
std::int64_t row_count(const std::vector<std::int64_t>& ne) {
  if (ne.empty()) return 1;
  std::int64_t n = ne[0] == 0 ? 0 : 1;
  for (std::size_t i = 1; i < ne.size(); ++i) n *= ne[i];
  return n;
}

std::string type_name(ggml::Type t) { return std::string(ggml::traits(t).name); }

bool fits(ggml::Type t, std::int64_t row) { return row % ggml::traits(t).block_weights == 0; }

// llama.cpp's fallback for a type whose block does not divide the row (llama-quant.cpp).
ggml::Type fallback(ggml::Type t) {
  switch (t) {
    case ggml::Type::kQ2_K:
    case ggml::Type::kQ3_K:
      return ggml::Type::kQ4_0;
    case ggml::Type::kQ4_K:
      return ggml::Type::kQ5_0;
    case ggml::Type::kQ5_K:
      return ggml::Type::kQ5_1;
    case ggml::Type::kQ6_K:
      return ggml::Type::kQ8_0;
    default:
      return ggml::Type::kF16;
  }
}

std::uint64_t size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

// The shared run: types chosen, the writer opened with every tensor's info, then each tensor streamed.
GgufQuantReport write_gguf(const std::vector<Source>& sources,
                           std::vector<std::pair<std::string, io::GgufValue>> metadata,
                           const std::string& output, const GgufQuantOptions& options,
                           const std::string& input) {
  GgufQuantReport report;
  std::vector<io::GgufWriter::Info> infos;
  std::uint64_t total = 0;
  for (const Source& s : sources) {
    GgufTensorReport r;
    r.name = s.name;
    r.shape = Shape(s.ne.rbegin(), s.ne.rend());
    r.from = s.from;
    r.input_bytes = s.bytes;
    r.to = choose_gguf_type(s.name, s.ne, options, r.note);
    if (!ggml::traits(r.to).can_quantize)
      throw Error(input + ":" + s.name + ": quantkit cannot write type " + type_name(r.to));
    r.output_bytes = io::ggml_tensor_bytes(static_cast<std::uint32_t>(r.to), s.ne);
    infos.push_back({s.name, s.ne, static_cast<std::uint32_t>(r.to)});
    report.dequantized_input |= s.block_quantized;
    total += static_cast<std::uint64_t>(row_count(s.ne) * row_length(s.ne));
    report.tensors.push_back(std::move(r));
  }
  // general.file_type and general.quantization_version: replaced where present, else appended.
  const auto set = [&](const std::string& key, io::GgufValue v) {
    for (auto& [k, value] : metadata)
      if (k == key) {
        value = std::move(v);
        return;
      }
    metadata.emplace_back(key, std::move(v));
  };
  set("general.quantization_version", io::GgufValue::of_u32(2));
  set("general.file_type", io::GgufValue::of_u32(llama_file_type(options.type)));
  io::GgufWriter writer(output, std::move(metadata), infos);
  std::vector<float> rows_f;
  std::vector<std::byte> rows_q;
  std::uint64_t done = 0;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const Source& s = sources[i];
    const ggml::Type to = report.tensors[i].to;
    const std::int64_t n = row_length(s.ne), rows = row_count(s.ne);
    if (n == 0 || rows == 0) continue;
    const std::int64_t out_row = ggml::row_bytes(to, n);
    // About 4 MiB of floats a chunk, whole rows.
    const std::int64_t chunk = std::max<std::int64_t>(1, (std::int64_t{1} << 20) / n);
    for (std::int64_t first = 0; first < rows; first += chunk) {
      const std::int64_t count = std::min(chunk, rows - first);
      rows_f.resize(static_cast<std::size_t>(count * n));
      rows_q.resize(static_cast<std::size_t>(count * out_row));
      try {
        s.read_rows(first, count, rows_f.data());
        for (std::int64_t r = 0; r < count; ++r)
          ggml::quantize_row(to, rows_f.data() + r * n, n, rows_q.data() + r * out_row);
      } catch (const Error& e) {
        throw Error(input + ":" + s.name + ": " + e.what());
      }
      writer.write_data(rows_q);
      done += static_cast<std::uint64_t>(count * n);
      if (options.progress)
        options.progress(static_cast<double>(done) / static_cast<double>(std::max<std::uint64_t>(1, total)));
    }
  }
  writer.commit();
  report.output_bytes = size_or_zero(output);
  return report;
}

// The ggml type of a GGUF tensor, if quantkit reads it.
std::optional<ggml::Type> readable(std::uint32_t id) {
  for (const ggml::TypeTraits& t : ggml::types())
    if (static_cast<std::uint32_t>(t.type) == id && t.can_dequantize) return t.type;
  return std::nullopt;
}

}  // namespace

ggml::Type choose_gguf_type(const std::string& name, const std::vector<std::int64_t>& ne,
                            const GgufQuantOptions& options, std::string& note) {
  note.clear();
  ggml::Type t = options.type;
  bool chosen = false;
  for (const auto& [pattern, type] : options.tensor_types)
    if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0) {
      t = type;
      note = "pattern " + pattern + "=" + type_name(type);
      chosen = true;
      break;
    }
  if (!chosen && ne.size() < 2) {
    t = ggml::Type::kF32;
    note = "rank " + std::to_string(ne.size()) + ": kept in f32";
  }
  const std::int64_t row = row_length(ne);
  while (!fits(t, row)) {
    const ggml::Type next = fallback(t);
    note += std::string(note.empty() ? "" : "; ") + "rows of " + std::to_string(row) + " hold no whole " +
            type_name(t) + " block of " + std::to_string(ggml::traits(t).block_weights) + ": " +
            type_name(next);
    t = next;
  }
  return t;
}

std::uint32_t llama_file_type(ggml::Type type) {
  switch (type) {
    case ggml::Type::kF32:
      return 0;
    case ggml::Type::kF16:
      return 1;
    case ggml::Type::kQ4_0:
      return 2;
    case ggml::Type::kQ4_1:
      return 3;
    case ggml::Type::kQ8_0:
      return 7;
    case ggml::Type::kQ5_0:
      return 8;
    case ggml::Type::kQ5_1:
      return 9;
    case ggml::Type::kQ2_K:
      return 10;
    case ggml::Type::kQ3_K:
      return 11;
    case ggml::Type::kQ4_K:
      return 14;
    case ggml::Type::kQ5_K:
      return 16;
    case ggml::Type::kQ6_K:
      return 18;
    case ggml::Type::kBF16:
      return 32;
    default:
      throw Error("no llama.cpp file type for " + type_name(type));
  }
}

GgufQuantReport quantize_gguf(const std::string& input, const std::string& output,
                              const GgufQuantOptions& options) {
  io::check_output_differs(output, {input});
  const io::GgufFile file = io::GgufFile::open(input);
  std::vector<Source> sources;
  for (const io::GgufTensor& t : file.tensors()) {
    const std::optional<ggml::Type> from = readable(t.type);
    const io::GgmlTypeInfo* info = io::ggml_type_info(t.type);
    if (!from)
      throw Error(input + ":" + t.name + ": quantkit cannot read type " + info->name +
                  " (it reads f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0 and q2_K .. q6_K)");
    Source s;
    s.name = t.name;
    s.ne = t.ne;
    s.from = info->name;
    s.bytes = t.data.size();
    s.block_quantized = info->block_size > 1;
    const ggml::Type type = *from;
    const std::int64_t n = row_length(t.ne);
    const std::int64_t in_row = n == 0 ? 0 : ggml::row_bytes(type, n);
    const bool mapped = file.owner() != nullptr;
    const io::GgufTensor* tensor = &t;
    s.read_rows = [tensor, type, n, in_row, mapped](std::int64_t first, std::int64_t rows, float* out) {
      const std::byte* base = tensor->data.data() + first * in_row;
      for (std::int64_t r = 0; r < rows; ++r) ggml::dequantize_row(type, base + r * in_row, n, out + r * n);
      if (mapped) io::release_mapped_pages({base, static_cast<std::size_t>(rows * in_row)});
    };
    sources.push_back(std::move(s));
  }
  GgufQuantReport report = write_gguf(sources, file.metadata(), output, options, input);
  report.input_bytes = size_or_zero(input);
  return report;
}

GgufQuantReport safetensors_to_gguf(const std::string& input, const std::string& output,
                                    const GgufQuantOptions& options) {
  io::check_output_differs(output, {input});
  const io::SafetensorsCheckpoint model = io::SafetensorsCheckpoint::open(input);
  std::vector<Source> sources;
  for (const auto& entry : model.tensors()) {
    const io::StTensor& t = *entry.tensor;
    const std::string where = model.shards()[entry.shard].name() + ":" + t.name;
    if (!io::st_dtype_is_float(t.dtype))
      throw Error(where + ": " + io::st_dtype_name(t.dtype) +
                  " is not a floating type (GGUF's plain tensors are "
                  "floats; drop the tensor first)");
    if (t.shape.size() > 4)
      throw Error(where + ": " + std::to_string(t.shape.size()) + " dimensions, GGUF holds 4");
    Source s;
    s.name = t.name;
    s.ne.assign(t.shape.rbegin(), t.shape.rend());
    if (s.ne.empty()) s.ne = {1};
    s.from = io::st_dtype_name(t.dtype);
    s.bytes = t.data.size();
    const std::int64_t n = row_length(s.ne);
    const bool mapped = model.shards()[entry.shard].owner() != nullptr;
    const std::size_t esize = io::st_dtype_size(t.dtype);
    const io::StTensor* tensor = &t;
    s.read_rows = [tensor, n, mapped, esize](std::int64_t first, std::int64_t rows, float* out) {
      io::st_to_float(*tensor, first * n, std::span<float>(out, static_cast<std::size_t>(rows * n)));
      if (mapped)
        io::release_mapped_pages(tensor->data.subspan(static_cast<std::size_t>(first * n) * esize,
                                                      static_cast<std::size_t>(rows * n) * esize));
    };
    sources.push_back(std::move(s));
  }
  GgufQuantReport report = write_gguf(sources, options.extra_metadata, output, options, input);
  report.input_bytes = model.file_bytes();
  return report;
}

}  // namespace qk
