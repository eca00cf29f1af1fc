// Printing the parts of qtool inspect's reports: statistics, errors against a reference, a method record.
#include "inspect_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "quantkit/files/checkpoint_file.hpp"
#include "quantkit/files/inspect.hpp"
#include "quantkit/files/model_compare.hpp"
#include "quantkit/files/safetensors_quant.hpp"
#include "quantkit/io/gguf.hpp"
#include "quantkit/io/safetensors_checkpoint.hpp"

namespace qtool {

nlohmann::json stats_json(const qk::TensorStats& s) {
  nlohmann::json p;
  for (std::size_t i = 0; i < s.percentile_ranks.size(); ++i)
    p[fmt::format("p{:g}", s.percentile_ranks[i])] = s.percentile_values[i];
  return {{"count", s.count},
          {"nonfinite", s.nonfinite},
          {"min", s.min},
          {"max", s.max},
          {"mean", s.mean},
          {"std", s.std},
          {"percentiles", p},
          {"percentiles_sampled", s.percentiles_sampled},
          {"histogram", s.histogram}};
}

void print_stats(const qk::TensorStats& s) {
  fmt::print("  count {}  min {:.6g}  max {:.6g}  mean {:.6g}  std {:.6g}\n", s.count, s.min, s.max, s.mean,
             s.std);
  if (s.nonfinite) fmt::print("  non-finite values: {}\n", s.nonfinite);
  if (s.count == 0) return;
  std::string line = s.percentiles_sampled ? "  percentiles (sampled):" : "  percentiles:";
  for (std::size_t i = 0; i < s.percentile_ranks.size(); ++i)
    line += fmt::format(" p{:g}={:.4g}", s.percentile_ranks[i], s.percentile_values[i]);
  fmt::print("{}\n  histogram:\n", line);
  const std::int64_t peak = *std::max_element(s.histogram.begin(), s.histogram.end());
  const double width = (s.max - s.min) / static_cast<double>(s.histogram.size());
  for (std::size_t b = 0; b < s.histogram.size(); ++b) {
    const auto bar = peak ? static_cast<std::size_t>(
                                50.0 * static_cast<double>(s.histogram[b]) / static_cast<double>(peak) + 0.5)
                          : 0;
    fmt::print("  {:>11.4g} |{:<50}| {}\n", s.min + width * static_cast<double>(b), std::string(bar, '#'),
               s.histogram[b]);
  }
}

void print_method(const qk::io::MethodRecord& r, bool has_input_scale) {
  fmt::print("  method {}: {} calibration rows", r.name, r.calibration_rows);
  if (has_input_scale) fmt::print(", alpha {:.2f}, input_scale stored", r.alpha);
  fmt::print("\n");
  if (r.output_error > 0) {
    fmt::print("  calibration output error (sum d H d^T) {:.4e}", r.output_error);
    if (r.rtn_output_error > 0)
      fmt::print(", rtn {:.4e} ({:.2f}x of rtn)", r.rtn_output_error, r.output_error / r.rtn_output_error);
    fmt::print("\n");
  }
}

void print_error(const qk::ErrorStats& e) {
  fmt::print("  vs reference: MSE {:.6g}  max abs error {:.6g}  SQNR {:.2f} dB\n", e.mse, e.max_abs,
             e.sqnr_db);
}

nlohmann::json error_json(const qk::ErrorStats& e) {
  const double rel = qk::relative_rmse(e);
  return {{"mse", e.mse},
          {"relative_rmse", std::isfinite(rel) ? nlohmann::json(rel) : nlohmann::json(nullptr)},
          {"max_abs_error", e.max_abs},
          {"sqnr_db", std::isinf(e.sqnr_db) ? nlohmann::json(nullptr) : nlohmann::json(e.sqnr_db)}};
}

namespace {

// One row per quantized tensor of a checkpoint or a quantized safetensors model, with errors when a
// reference was given.
int print_checkpoint(const std::string& path, const char* what, const char* json_kind, const char* noun,
                     const std::vector<qk::CheckpointTensorSummary>& rows, const qk::CheckpointIndex& index,
                     bool with_reference, bool json) {
  if (json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : rows) {
      nlohmann::json row{{"name", r.name},
                         {"shape", r.meta.shape},
                         {"format", qk::format_label(r.meta)},
                         {"bits_per_weight", r.bits_per_weight}};
      if (r.has_reference) row["error"] = error_json(r.error);
      j.push_back(row);
    }
    print_json({{"file", path}, {"kind", json_kind}, {"quantized", j}, {"copied", index.copied}});
    return 0;
  }
  fmt::print("{}: {}, {} quantized and {} copied {}(s)\n\n", path, what, rows.size(), index.copied.size(),
             noun);
  fmt::print("| {} | shape | format | bits/weight |{}\n|---|---|---|---:|{}\n", noun,
             with_reference ? " MSE | relative RMSE | SQNR dB | max abs error |" : "",
             with_reference ? "---:|---:|---:|---:|" : "");
  for (const auto& r : rows) {
    fmt::print("| {} | {} | {} | {:.2f} |", r.name, qk::shape_string(r.meta.shape), qk::format_label(r.meta),
               r.bits_per_weight);
    if (r.has_reference)
      fmt::print(" {:.4e} | {:.3e} | {:.2f} | {:.3e} |", r.error.mse, qk::relative_rmse(r.error),
                 r.error.sqnr_db, r.error.max_abs);
    fmt::print("\n");
  }
  if (!index.copied.empty()) {
    std::string names;
    for (const auto& n : index.copied) names += (names.empty() ? "" : ", ") + n;
    fmt::print("\ncopied: {}\n", names);
  }
  return 0;
}

}  // namespace

// qtool inspect on a quantized checkpoint: one row per quantized member, errors against --reference.
int inspect_checkpoint(const std::string& path, const std::string& reference, bool json) {
  return print_checkpoint(path, "quantized checkpoint", "quantized_checkpoint", "member",
                          qk::summarize_checkpoint(path, reference), qk::read_checkpoint_index(path),
                          !reference.empty(), json);
}

int print_model_comparison(const std::string& path, const std::string& reference, bool json);

int inspect_safetensors(const std::string& path, const std::string& reference, bool json) {
  if (qk::is_quantized_safetensors(path))
    return print_checkpoint(path, "quantized safetensors", "quantized_safetensors", "tensor",
                            qk::summarize_safetensors(path, reference),
                            qk::read_safetensors_quant_index(qk::io::SafetensorsFile::open(path)),
                            !reference.empty(), json);
  if (!reference.empty()) return print_model_comparison(path, reference, json);
  const qk::io::SafetensorsCheckpoint model = qk::io::SafetensorsCheckpoint::open(path);
  std::uint64_t data_bytes = 0;
  for (const auto& e : model.tensors()) data_bytes += e.tensor->data.size();
  if (json) {
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& e : model.tensors())
      tensors.push_back({{"name", e.tensor->name},
                         {"shape", e.tensor->shape},
                         {"dtype", qk::io::st_dtype_name(e.tensor->dtype)},
                         {"bytes", e.tensor->data.size()},
                         {"shard", model.shards()[e.shard].name()}});
    print_json({{"file", path},
                {"kind", "safetensors"},
                {"shards", model.shards().size()},
                {"metadata", model.metadata()},
                {"tensors", tensors},
                {"data_bytes", data_bytes},
                {"file_bytes", model.file_bytes()}});
    return 0;
  }
  fmt::print("{}: safetensors model, {} tensor(s) in {} file(s), {} of data\n", path, model.tensors().size(),
             model.shards().size(), human_bytes(data_bytes));
  for (const auto& [k, v] : model.metadata()) fmt::print("  metadata {} = {}\n", k, v);
  fmt::print("\n| tensor | shape | dtype | bytes |\n|---|---|---|---:|\n");
  for (const auto& e : model.tensors())
    fmt::print("| {} | {} | {} | {} |\n", e.tensor->name, qk::shape_string(e.tensor->shape),
               qk::io::st_dtype_name(e.tensor->dtype), e.tensor->data.size());
  return 0;
}

// A model against its reference, tensor by tensor (llama.cpp's quantize-stats).
int print_model_comparison(const std::string& path, const std::string& reference, bool json) {
  const qk::ModelComparison c = qk::compare_model(path, reference);
  const auto finite_or_null = [](double v) {
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
  };
  if (json) {
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : c.tensors)
      tensors.push_back({{"name", t.name},
                         {"shape", t.shape},
                         {"type", t.type},
                         {"bits_per_weight", t.bits_per_weight},
                         {"bytes", t.bytes},
                         {"mse", t.error.mse},
                         {"relative_rmse", finite_or_null(t.relative_rmse)},
                         {"sqnr_db", finite_or_null(t.error.sqnr_db)},
                         {"max_abs_error", t.error.max_abs}});
    print_json({{"file", path},
                {"reference", reference},
                {"tensors", tensors},
                {"total",
                 {{"mse", c.total.mse},
                  {"relative_rmse", finite_or_null(c.relative_rmse)},
                  {"sqnr_db", finite_or_null(c.total.sqnr_db)},
                  {"max_abs_error", c.total.max_abs}}},
                {"reference_only", c.reference_only}});
    return 0;
  }
  fmt::print("{} against {}: {} tensor(s)\n\n", path, reference, c.tensors.size());
  fmt::print(
      "| tensor | shape | type | bits/weight | relative RMSE | SQNR dB | max abs error |\n"
      "|---|---|---|---:|---:|---:|---:|\n");
  for (const auto& t : c.tensors)
    fmt::print("| {} | {} | {} | {:.2f} | {:.3e} | {:.2f} | {:.3e} |\n", t.name, qk::shape_string(t.shape),
               t.type, t.bits_per_weight, t.relative_rmse, t.error.sqnr_db, t.error.max_abs);
  fmt::print("| all | | | | {:.3e} | {:.2f} | {:.3e} |\n", c.relative_rmse, c.total.sqnr_db, c.total.max_abs);
  if (!c.reference_only.empty()) {
    std::string names;
    for (const auto& n : c.reference_only) names += (names.empty() ? "" : ", ") + n;
    fmt::print("\nonly in the reference: {}\n", names);
  }
  return 0;
}

int inspect_gguf(const std::string& path, const std::string& reference, bool json) {
  if (!reference.empty()) return print_model_comparison(path, reference, json);
  const qk::io::GgufFile f = qk::io::GgufFile::open(path);
  std::uint64_t data_bytes = 0, weights = 0;
  for (const auto& t : f.tensors()) {
    data_bytes += t.data.size();
    weights += static_cast<std::uint64_t>(t.numel());
  }
  const auto bits = [](const qk::io::GgufTensor& t) {
    return t.numel() ? 8.0 * static_cast<double>(t.data.size()) / static_cast<double>(t.numel()) : 0.0;
  };
  if (json) {
    nlohmann::json metadata = nlohmann::json::object(), tensors = nlohmann::json::array();
    for (const auto& [key, value] : f.metadata()) metadata[key] = value.summary();
    for (const auto& t : f.tensors())
      tensors.push_back({{"name", t.name},
                         {"shape", t.shape()},
                         {"type", qk::io::ggml_type_info(t.type)->name},
                         {"bits_per_weight", bits(t)},
                         {"bytes", t.data.size()}});
    print_json({{"file", path},
                {"kind", "gguf"},
                {"version", f.version()},
                {"alignment", f.alignment()},
                {"metadata", metadata},
                {"tensors", tensors},
                {"data_bytes", data_bytes},
                {"bits_per_weight",
                 weights ? 8.0 * static_cast<double>(data_bytes) / static_cast<double>(weights) : 0.0}});
    return 0;
  }
  fmt::print("{}: GGUF v{}, {} metadata entries, {} tensor(s), {} of data, {:.2f} bits/weight\n", path,
             f.version(), f.metadata().size(), f.tensors().size(), human_bytes(data_bytes),
             weights ? 8.0 * static_cast<double>(data_bytes) / static_cast<double>(weights) : 0.0);
  for (const auto& [key, value] : f.metadata()) fmt::print("  {} = {}\n", key, value.summary());
  fmt::print("\n| tensor | shape | type | bits/weight | bytes |\n|---|---|---|---:|---:|\n");
  for (const auto& t : f.tensors())
    fmt::print("| {} | {} | {} | {:.2f} | {} |\n", t.name, qk::shape_string(t.shape()),
               qk::io::ggml_type_info(t.type)->name, bits(t), t.data.size());
  return 0;
}

}  // namespace qtool
