// qtool inspect FILE [--reference ORIG.npy]: statistics of a .npy, the spec and size of a quantized .npz
// (its element format, and the method that made it), the members of any other .npz, and with --reference
// the error against the original.
// qtool inspect Q1.npz Q2.npz ... --reference W.npy [--acts X.npy ...]: quantized files of one linear layer
// side by side (method, format, bits per weight, weight error, and with --acts the layer's output error).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "common.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/files/quantize_file.hpp"
#include "quantkit/files/weight_method_file.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qtool {

namespace {

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

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

// What the file says about the method that made it (measured on its calibration set when written).
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
  return {{"mse", e.mse},
          {"max_abs_error", e.max_abs},
          {"sqnr_db", std::isinf(e.sqnr_db) ? nlohmann::json(nullptr) : nlohmann::json(e.sqnr_db)}};
}

std::vector<float> reference_values(const std::string& path, const qk::Shape& shape) {
  const qk::io::NpyArray ref = qk::io::read_npy(path);
  if (ref.shape() != shape) {
    throw qk::Error(path + ": reference shape " + qk::shape_string(ref.shape()) + " differs from " +
                    qk::shape_string(shape));
  }
  return ref.to_vector<float>();
}

int inspect_npy(const std::string& path, const std::string& reference, const Output& out) {
  const qk::io::NpyArray array = qk::io::read_npy(path);
  const std::vector<float> values = array.to_vector<float>();
  const qk::TensorStats stats = qk::compute_stats(values);
  nlohmann::json j{{"file", path},
                   {"kind", "npy"},
                   {"shape", array.shape()},
                   {"dtype", qk::io::dtype_name(array.dtype())},
                   {"bytes", std::filesystem::file_size(path)},
                   {"stats", stats_json(stats)}};
  qk::ErrorStats err;
  if (!reference.empty()) {
    err = qk::compare(reference_values(reference, array.shape()), values);
    j["reference"] = reference;
    j["error"] = error_json(err);
  }
  if (out.json) {
    print_json(j);
    return 0;
  }
  fmt::print("{}: .npy {} {}, {}\n", path, qk::shape_string(array.shape()), qk::io::dtype_name(array.dtype()),
             human_bytes(std::filesystem::file_size(path)));
  print_stats(stats);
  if (!reference.empty()) print_error(err);
  return 0;
}

int inspect_quantized(const std::string& path, const std::string& reference, const Output& out) {
  const qk::io::QuantizedFile file = qk::io::read_quantized(path);
  const auto& m = file.meta;
  const std::uint64_t file_bytes = std::filesystem::file_size(path);
  const std::uint64_t original_bytes =
      static_cast<std::uint64_t>(qk::shape_numel(m.shape)) * qk::io::dtype_size(m.dtype);
  // An empty tensor quantized per channel has no scales at all.
  const auto& sc = file.params.scale;
  const auto& zp = file.params.zero_point;
  const double smin = sc.empty() ? 0.0 : *std::min_element(sc.begin(), sc.end());
  const double smax = sc.empty() ? 0.0 : *std::max_element(sc.begin(), sc.end());
  const std::int32_t zmin = zp.empty() ? 0 : *std::min_element(zp.begin(), zp.end());
  const std::int32_t zmax = zp.empty() ? 0 : *std::max_element(zp.begin(), zp.end());
  const double ratio =
      file_bytes ? static_cast<double>(original_bytes) / static_cast<double>(file_bytes) : 0.0;
  nlohmann::json j{{"file", path},
                   {"kind", "quantized"},
                   {"meta", nlohmann::json::parse(qk::io::encode_meta(m))},
                   {"scales", file.params.scale.size()},
                   {"scale_min", smin},
                   {"scale_max", smax},
                   {"zero_point_min", zmin},
                   {"zero_point_max", zmax},
                   {"bytes", file_bytes},
                   {"original_bytes", original_bytes},
                   {"compression_ratio", ratio}};
  qk::ErrorStats err;
  if (!reference.empty()) {
    err = qk::compare(reference_values(reference, m.shape), qk::dequantize_to_float(file));
    j["reference"] = reference;
    j["error"] = error_json(err);
  }
  if (out.json) {
    print_json(j);
    return 0;
  }
  fmt::print("{}: quantized {} (from {})\n", path, qk::shape_string(m.shape), qk::io::dtype_name(m.dtype));
  if (qk::is_codebook(m.element)) {
    fmt::print("  {} ({}-bit codes{}) {}\n", qk::to_string(m.element), m.code_bits,
               m.code_bits < 8 ? ", packed" : "", qk::describe_granularity(m.spec));
    fmt::print("  {} scale(s) in [{:.6g}, {:.6g}]\n", file.params.scale.size(), smin, smax);
  } else {
    fmt::print("  {}-bit {} {} {}", m.code_bits, m.spec.is_signed ? "signed" : "unsigned",
               qk::to_string(m.spec.scheme), qk::to_string(m.spec.granularity));
    if (m.spec.granularity == qk::Granularity::kPerChannel) fmt::print(" (axis {})", m.spec.axis);
    if (m.spec.granularity == qk::Granularity::kPerGroup) fmt::print(" (group size {})", m.spec.group_size);
    fmt::print(", codes [{}, {}]{}\n", m.range.min, m.range.max, m.code_bits < 8 ? ", packed" : "");
    fmt::print("  {} scale(s) in [{:.6g}, {:.6g}], zero points in [{}, {}]\n", file.params.scale.size(), smin,
               smax, zmin, zmax);
  }
  if (m.method) print_method(*m.method, !file.input_scale.empty());
  fmt::print("  {} on disk, {} as {}: {:.2f}x smaller\n", human_bytes(file_bytes),
             human_bytes(original_bytes), qk::io::dtype_name(m.dtype), ratio);
  if (!reference.empty()) print_error(err);
  return 0;
}

std::string describe_format(const qk::io::QuantizedFileMeta& m) {
  std::string g = m.spec.granularity == qk::Granularity::kPerGroup     ? fmt::format("g{}", m.spec.group_size)
                  : m.spec.granularity == qk::Granularity::kPerChannel ? std::string("per-channel")
                                                                       : std::string("per-tensor");
  if (qk::is_codebook(m.element)) return fmt::format("{} {}", qk::to_string(m.element), g);
  return fmt::format("int{}{} {}", m.code_bits, m.spec.is_signed ? "" : "u", g);
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
          {"format", describe_format(r.meta)},
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
               r.meta.method ? r.meta.method->name : "-", describe_format(r.meta), r.bits_per_weight,
               r.weight.mse, r.weight.sqnr_db);  // fmt prints an infinite SQNR as inf
    if (r.has_output) fmt::print(" {:.4e} | {:.2f} |", r.output.mse, r.output.sqnr_db);
    fmt::print("\n");
  }
  return 0;
}

int inspect_npz(const std::string& path, const Output& out) {
  nlohmann::json members = nlohmann::json::array();
  for (const auto& name : qk::io::npz_names(path)) {
    const qk::io::NpyArray a = qk::io::read_npz_member(path, name);
    members.push_back({{"name", name}, {"shape", a.shape()}, {"dtype", qk::io::dtype_name(a.dtype())}});
  }
  if (out.json) {
    print_json({{"file", path}, {"kind", "npz"}, {"members", members}});
    return 0;
  }
  fmt::print("{}: .npz with {} member(s)\n", path, members.size());
  for (const auto& m : members) {
    fmt::print("  {:<24} {:<16} {}\n", m["name"].get<std::string>(),
               qk::shape_string(m["shape"].get<qk::Shape>()), m["dtype"].get<std::string>());
  }
  return 0;
}

}  // namespace

Handler add_inspect(CLI::App& app, Output& out) {
  struct Args {
    std::vector<std::string> files, acts;
    std::string reference;
  };
  auto args = std::make_shared<Args>();
  auto* cmd =
      app.add_subcommand("inspect", "Statistics of a .npy, or spec, size and error of a quantized .npz");
  cmd->add_option("file", args->files, ".npy or .npz file; several quantized .npz of one layer to compare")
      ->required();
  cmd->add_option("--reference", args->reference,
                  "Original .npy: report MSE, max abs error and SQNR against it");
  cmd->add_option("--acts", args->acts,
                  "Calibration activations of the layer's input, .npy [..., in] (repeatable): also report "
                  "each file's output error on them");
  return [args, &out] {
    if (args->files.size() > 1 || !args->acts.empty())
      return compare_files(args->files, args->reference, args->acts, out);
    const std::string& file = args->files.front();
    if (has_suffix(file, ".npz")) {
      const auto names = qk::io::npz_names(file);
      if (std::find(names.begin(), names.end(), "meta") != names.end())
        return inspect_quantized(file, args->reference, out);
      if (!args->reference.empty()) throw UsageError("--reference needs a .npy or a quantized .npz");
      return inspect_npz(file, out);
    }
    return inspect_npy(file, args->reference, out);
  };
}

}  // namespace qtool
