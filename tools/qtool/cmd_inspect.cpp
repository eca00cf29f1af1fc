// qtool inspect FILE [--reference ORIG.npy]: statistics of a .npy, the spec and size of a quantized .npz
// (its element format, and the method that made it), the members of any other .npz, and with --reference
// the error against the original.
// qtool inspect Q1.npz Q2.npz ... --reference W.npy [--acts X.npy ...]: quantized files of one linear layer
// side by side (method, format, bits per weight, weight error, and with --acts the layer's output error).
#include <fmt/format.h>

#include <algorithm>

#include "common.hpp"
#include "inspect_report.hpp"
#include "onnx_quant.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/files/checkpoint_file.hpp"
#include "quantkit/files/inspect.hpp"
#include "quantkit/files/onnx_quant.hpp"
#include "quantkit/files/safetensors_quant.hpp"
#include "quantkit/files/weight_method_file.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qtool {

namespace {

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int inspect_npy(const std::string& path, const std::string& reference, const Output& out) {
  const qk::NpySummary s = qk::summarize_npy(path, reference);
  nlohmann::json j{{"file", path},          {"kind", "npy"},
                   {"shape", s.shape},      {"dtype", qk::io::dtype_name(s.dtype)},
                   {"bytes", s.file_bytes}, {"stats", stats_json(s.stats)}};
  if (s.error) {
    j["reference"] = reference;
    j["error"] = error_json(*s.error);
  }
  if (out.json) {
    print_json(j);
    return 0;
  }
  fmt::print("{}: .npy {} {}, {}\n", path, qk::shape_string(s.shape), qk::io::dtype_name(s.dtype),
             human_bytes(s.file_bytes));
  print_stats(s.stats);
  if (s.error) print_error(*s.error);
  return 0;
}

int inspect_quantized(const std::string& path, const std::string& reference, const Output& out) {
  const qk::QuantizedSummary s = qk::summarize_quantized(path, reference);
  const auto& m = s.meta;
  nlohmann::json j{{"file", path},
                   {"kind", "quantized"},
                   {"meta", nlohmann::json::parse(qk::io::encode_meta(m))},
                   {"scales", s.scales},
                   {"scale_min", s.scale_min},
                   {"scale_max", s.scale_max},
                   {"zero_point_min", s.zero_point_min},
                   {"zero_point_max", s.zero_point_max},
                   {"bytes", s.file_bytes},
                   {"original_bytes", s.original_bytes},
                   {"compression_ratio", s.compression_ratio}};
  if (s.error) {
    j["reference"] = reference;
    j["error"] = error_json(*s.error);
  }
  if (out.json) {
    print_json(j);
    return 0;
  }
  fmt::print("{}: quantized {} (from {})\n", path, qk::shape_string(m.shape), qk::io::dtype_name(m.dtype));
  if (qk::is_codebook(m.element)) {
    fmt::print("  {} ({}-bit codes{}) {}\n", qk::to_string(m.element), m.code_bits,
               m.code_bits < 8 ? ", packed" : "", qk::describe_granularity(m.spec));
    fmt::print("  {} scale(s) in [{:.6g}, {:.6g}]\n", s.scales, s.scale_min, s.scale_max);
  } else {
    fmt::print("  {}-bit {} {} {}", m.code_bits, m.spec.is_signed ? "signed" : "unsigned",
               qk::to_string(m.spec.scheme), qk::to_string(m.spec.granularity));
    if (m.spec.granularity == qk::Granularity::kPerChannel) fmt::print(" (axis {})", m.spec.axis);
    if (m.spec.granularity == qk::Granularity::kPerGroup) fmt::print(" (group size {})", m.spec.group_size);
    fmt::print(", codes [{}, {}]{}\n", m.range.min, m.range.max, m.code_bits < 8 ? ", packed" : "");
    fmt::print("  {} scale(s) in [{:.6g}, {:.6g}], zero points in [{}, {}]\n", s.scales, s.scale_min,
               s.scale_max, s.zero_point_min, s.zero_point_max);
  }
  if (m.method) print_method(*m.method, s.has_input_scale);
  fmt::print("  {} on disk, {} as {}: {}\n", human_bytes(s.file_bytes), human_bytes(s.original_bytes),
             qk::io::dtype_name(m.dtype), size_change(s.compression_ratio));
  if (s.error) print_error(*s.error);
  return 0;
}

int compare_files(const std::vector<std::string>& files, const std::string& reference,
                  const std::vector<std::string>& acts, const Output& out) {
  if (reference.empty()) throw UsageError("comparing quantized files needs --reference W.npy");
  for (const std::string& f : files)
    if (!has_suffix(f, ".npz")) throw UsageError(f + ": --acts and several files take quantized .npz files");
  const std::vector<qk::LayerFileError> rows =
      qk::compare_layer_files(files, reference, acts, make_progress("activations"));
  finish_progress();
  if (out.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const qk::LayerFileError& r : rows) {
      nlohmann::json row{
          {"file", r.file},
          {"format", qk::format_label(r.meta)},
          {"element", qk::to_string(r.meta.element)},
          {"method", r.meta.method ? nlohmann::json(r.meta.method->name) : nlohmann::json(nullptr)},
          {"bytes", r.file_bytes},
          {"bits_per_weight", r.bits_per_weight},
          {"error", error_json(r.weight)}};
      if (r.has_output)
        row["output_error"] = {{"mse", r.output.mse},
                               {"relative", r.output.relative},
                               {"sqnr_db", std::isinf(r.output.sqnr_db) ? nlohmann::json(nullptr)
                                                                        : nlohmann::json(r.output.sqnr_db)}};
      j.push_back(row);
    }
    print_json(j);
    return 0;
  }
  fmt::print("against {}{}\n\n", reference,
             acts.empty() ? std::string() : fmt::format(", outputs on {} activation file(s)", acts.size()));
  fmt::print("| file | method | format | bits/weight | weight MSE | weight SQNR dB |{}\n",
             acts.empty() ? "" : " output MSE | output SQNR dB |");
  fmt::print("|---|---|---|---:|---:|---:|{}\n", acts.empty() ? "" : "---:|---:|");
  for (const qk::LayerFileError& r : rows) {
    fmt::print("| {} | {} | {} | {:.3f} | {:.4e} | {:.2f} |", r.file,
               r.meta.method ? r.meta.method->name : "-", qk::format_label(r.meta), r.bits_per_weight,
               r.weight.mse, r.weight.sqnr_db);  // fmt prints an infinite SQNR as inf
    if (r.has_output) fmt::print(" {:.4e} | {:.2f} |", r.output.mse, r.output.sqnr_db);
    fmt::print("\n");
  }
  return 0;
}

int inspect_npz(const std::string& path, const Output& out) {
  const std::vector<qk::NpzMember> members = qk::npz_members(path);
  if (out.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& m : members)
      j.push_back({{"name", m.name}, {"shape", m.shape}, {"dtype", qk::io::dtype_name(m.dtype)}});
    print_json({{"file", path}, {"kind", "npz"}, {"members", j}});
    return 0;
  }
  fmt::print("{}: .npz with {} member(s)\n", path, members.size());
  for (const auto& m : members)
    fmt::print("  {:<24} {:<16} {}\n", m.name, qk::shape_string(m.shape), qk::io::dtype_name(m.dtype));
  return 0;
}

}  // namespace

Handler add_inspect(CLI::App& app, Output& out) {
  struct Args {
    std::vector<std::string> files, acts;
    std::string reference;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "inspect", "Statistics of a .npy, or spec, size and error of a quantized .npz or .safetensors");
  cmd->add_option(
         "file", args->files,
         ".npy, .npz, .safetensors, .gguf or .onnx file; several quantized .npz of one layer to compare")
      ->required();
  cmd->add_option("--reference", args->reference,
                  "Original .npy (.npz, .safetensors for a whole model): report MSE, max abs error and SQNR "
                  "against it");
  cmd->add_option("--acts", args->acts,
                  "Calibration activations of the layer's input, .npy [..., in] (repeatable): also report "
                  "each file's output error on them");
  return [args, &out] {
    if (args->files.size() > 1 || !args->acts.empty())
      return compare_files(args->files, args->reference, args->acts, out);
    const std::string& file = args->files.front();
    if (qk::is_safetensors_path(file)) return inspect_safetensors(file, args->reference, out.json);
    if (qk::is_onnx_path(file)) return inspect_onnx_model(file, args->reference, out);
    if (file.ends_with(".gguf")) {
      return inspect_gguf(file, args->reference, out.json);
    }
    switch (qk::tensor_file_kind(file)) {
      case qk::TensorFileKind::kQuantized:
        return inspect_quantized(file, args->reference, out);
      case qk::TensorFileKind::kNpz:
        if (qk::is_quantized_checkpoint(file)) return inspect_checkpoint(file, args->reference, out.json);
        if (!args->reference.empty()) throw UsageError("--reference needs a .npy or a quantized .npz");
        return inspect_npz(file, out);
      case qk::TensorFileKind::kNpy:
        break;
    }
    return inspect_npy(file, args->reference, out);
  };
}

}  // namespace qtool
