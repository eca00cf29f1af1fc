// Whole models into GGUF (files/gguf_quant.hpp): choose each tensor's type (by rule, or under a budget in
// gguf_budget.cpp), then stream it row chunk by row chunk through ggml's quantizers into the GGUF writer.
#include "quantkit/files/gguf_quant.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "gguf_budget.hpp"
#include "model_tensors.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/kernels/parallel.hpp"

namespace qk {

namespace {

// With a budget, measuring the candidates takes about this share of the run (several quantizations of each
// tensor against one when writing).
constexpr double kMeasuringShare = 0.8;

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

bool is_nested_array(const io::GgufValue& v) {
  return v.type == io::GgufType::kArray && v.element == io::GgufType::kArray;
}

// general.file_type and general.quantization_version: replaced where present, else appended (so the
// header's size does not depend on the values).
void set_quantization_keys(std::vector<std::pair<std::string, io::GgufValue>>& metadata, ggml::Type type) {
  const auto set = [&](const std::string& key, io::GgufValue v) {
    for (auto& [k, value] : metadata)
      if (k == key) {
        value = std::move(v);
        return;
      }
    metadata.emplace_back(key, std::move(v));
  };
  set("general.quantization_version", io::GgufValue::of_u32(2));
  set("general.file_type", io::GgufValue::of_u32(llama_file_type(type)));
}

std::vector<io::GgufWriter::Info> writer_infos(const detail::ModelTensors& m, const GgufQuantReport& report) {
  std::vector<io::GgufWriter::Info> infos;
  for (std::size_t i = 0; i < m.tensors.size(); ++i)
    infos.push_back({m.tensors[i].name, m.tensors[i].ne, static_cast<std::uint32_t>(report.tensors[i].to)});
  return infos;
}

// The input's metadata (a GGUF's own, or the caller's extra entries for safetensors) with the two keys set.
std::vector<std::pair<std::string, io::GgufValue>> output_metadata(const detail::ModelTensors& m,
                                                                   const GgufQuantOptions& options,
                                                                   ggml::Type file_type) {
  auto metadata = m.gguf ? m.gguf->metadata() : options.extra_metadata;
  // ggml's reader refuses arrays of arrays (gguf.cpp: nested arrays are not supported), so a file that
  // kept them would not load where it is meant to; they are left out and reported (plan()).
  std::erase_if(metadata, [](const auto& kv) { return is_nested_array(kv.second); });
  set_quantization_keys(metadata, file_type);
  return metadata;
}

// Every tensor's type (by rule, then under the budget when there is one), bytes and totals.
GgufQuantReport plan(const detail::ModelTensors& m, const GgufQuantOptions& options) {
  if (m.gguf && !options.extra_metadata.empty())
    throw Error(m.path + ": a GGUF input keeps its own metadata; extra entries are for a safetensors input");
  GgufQuantReport report;
  if (m.gguf)
    for (const auto& [key, value] : m.gguf->metadata())
      if (is_nested_array(value)) report.dropped_metadata.push_back(key);
  for (const detail::ModelTensor& s : m.tensors) {
    GgufTensorReport r;
    r.name = s.name;
    r.shape = Shape(s.ne.rbegin(), s.ne.rend());
    r.from = s.from;
    r.input_bytes = s.bytes;
    r.to = choose_gguf_type(s.name, s.ne, options, r.note);
    report.dequantized_input |= s.block_quantized;
    report.tensors.push_back(std::move(r));
  }
  // An imatrix may cover more tensors than this model has (one file for a model family), but one that
  // names none of them is the wrong file.
  if (!options.importance.empty() &&
      std::none_of(options.importance.begin(), options.importance.end(),
                   [&](const auto& entry) { return m.find(entry.first) != nullptr; }))
    throw Error(m.path + ": the importance names none of the model's tensors");
  if (options.budget.kind != GgufBudgetKind::kNone) {
    const auto metadata = output_metadata(m, options, options.type);
    const io::GgufWriter::Layout layout = io::GgufWriter::layout(metadata, writer_infos(m, report));
    detail::plan_within_budget(m, options, layout, report, [&](double f) {
      if (options.progress) options.progress(kMeasuringShare * f);
    });
  }
  std::map<ggml::Type, std::uint64_t> weights_by_type;
  for (std::size_t i = 0; i < m.tensors.size(); ++i) {
    GgufTensorReport& r = report.tensors[i];
    const detail::ModelTensor& s = m.tensors[i];
    if (!ggml::traits(r.to).can_quantize)
      throw Error(s.where + ": quantkit cannot write type " + type_name(r.to));
    r.output_bytes = io::ggml_tensor_bytes(static_cast<std::uint32_t>(r.to), s.ne);
    r.weighted = detail::find_importance(s, options.importance) != nullptr;
    if (!options.importance.empty() && !r.weighted && s.ne.size() >= 2 && r.to != ggml::Type::kF32)
      r.note += std::string(r.note.empty() ? "" : "; ") + "no importance: unweighted";
    report.weights += static_cast<std::uint64_t>(s.numel());
    report.data_bytes += r.output_bytes;
    if (s.ne.size() >= 2) weights_by_type[r.to] += static_cast<std::uint64_t>(s.numel());
  }
  report.bits_per_weight =
      report.weights ? 8.0 * static_cast<double>(report.data_bytes) / static_cast<double>(report.weights) : 0;
  report.file_type = options.type;
  if (options.budget.kind != GgufBudgetKind::kNone && !weights_by_type.empty())
    report.file_type = std::max_element(weights_by_type.begin(), weights_by_type.end(), [](auto& a, auto& b) {
                         return a.second < b.second;
                       })->first;
  report.input_bytes = m.file_bytes;
  return report;
}

// Streams every tensor through its type's quantizer into the writer.
void write(const detail::ModelTensors& m, GgufQuantReport& report, const std::string& output,
           const GgufQuantOptions& options) {
  io::GgufWriter writer(output, output_metadata(m, options, report.file_type), writer_infos(m, report));
  const int threads = detail::thread_count(options.threads);
  std::vector<float> rows_f;
  std::vector<std::byte> rows_q;
  std::uint64_t done = 0;
  for (std::size_t i = 0; i < m.tensors.size(); ++i) {
    const detail::ModelTensor& s = m.tensors[i];
    const ggml::Type to = report.tensors[i].to;
    const std::int64_t n = s.row_length(), rows = s.row_count();
    if (n == 0 || rows == 0) continue;
    const TensorImportance* importance = detail::find_importance(s, options.importance);
    const std::int64_t out_row = ggml::row_bytes(to, n);
    const std::int64_t chunk = detail::rows_per_chunk(n);
    for (std::int64_t first = 0; first < rows; first += chunk) {
      const std::int64_t count = std::min(chunk, rows - first);
      rows_f.resize(static_cast<std::size_t>(count * n));
      rows_q.resize(static_cast<std::size_t>(count * out_row));
      try {
        s.read_rows(first, count, rows_f.data());
        kernels::parallel_for(count, threads, 1, [&](std::int64_t r0, std::int64_t r1) {
          for (std::int64_t r = r0; r < r1; ++r)
            ggml::quantize_row(to, rows_f.data() + r * n, n, rows_q.data() + r * out_row,
                               detail::row_importance(importance, s, first + r));
        });
      } catch (const Error& e) {
        throw Error(s.where + ": " + e.what());
      }
      writer.write_data(rows_q);
      done += static_cast<std::uint64_t>(count * n);
      if (options.progress) {
        const double f =
            static_cast<double>(done) / static_cast<double>(std::max<std::uint64_t>(1, report.weights));
        options.progress(
            options.budget.kind == GgufBudgetKind::kNone ? f : kMeasuringShare + (1 - kMeasuringShare) * f);
      }
    }
  }
  writer.commit();
  report.output_bytes = size_or_zero(output);
}

GgufQuantReport convert(const std::string& input, const std::string& output, const GgufQuantOptions& options,
                        bool want_gguf) {
  io::check_output_differs(output, {input});
  const detail::ModelTensors m = detail::open_model_tensors(input);
  if (want_gguf != (m.gguf != nullptr))
    throw Error(input + (want_gguf ? ": not a .gguf file" : ": not a safetensors model"));
  GgufQuantReport report = plan(m, options);
  write(m, report, output, options);
  return report;
}

}  // namespace

std::vector<ggml::Type> default_budget_candidates() {
  using T = ggml::Type;
  return {T::kQ2_K, T::kQ3_K, T::kQ4_0, T::kQ4_1, T::kQ4_K, T::kQ5_0,
          T::kQ5_1, T::kQ5_K, T::kQ6_K, T::kQ8_0, T::kF16};
}

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
  const std::int64_t row = ne.empty() ? 1 : ne[0];
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

GgufQuantReport plan_gguf(const std::string& input, const GgufQuantOptions& options) {
  return plan(detail::open_model_tensors(input), options);
}

GgufQuantReport quantize_gguf(const std::string& input, const std::string& output,
                              const GgufQuantOptions& options) {
  return convert(input, output, options, /*want_gguf=*/true);
}

GgufQuantReport safetensors_to_gguf(const std::string& input, const std::string& output,
                                    const GgufQuantOptions& options) {
  return convert(input, output, options, /*want_gguf=*/false);
}

}  // namespace qk
