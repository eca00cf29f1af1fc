// qtool inspect FILE [--reference ORIG.npy]: statistics of a .npy, the spec and size of a quantized .npz,
// the members of any other .npz, and with --reference the error against the original.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "common.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/ptq/quantize_file.hpp"
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
  fmt::print("  {}-bit {} {} {}", m.code_bits, m.spec.is_signed ? "signed" : "unsigned",
             qk::to_string(m.spec.scheme), qk::to_string(m.spec.granularity));
  if (m.spec.granularity == qk::Granularity::kPerChannel) fmt::print(" (axis {})", m.spec.axis);
  if (m.spec.granularity == qk::Granularity::kPerGroup) fmt::print(" (group size {})", m.spec.group_size);
  fmt::print(", codes [{}, {}]{}\n", m.range.min, m.range.max, m.code_bits < 8 ? ", packed" : "");
  fmt::print("  {} scale(s) in [{:.6g}, {:.6g}], zero points in [{}, {}]\n", file.params.scale.size(), smin,
             smax, zmin, zmax);
  fmt::print("  {} on disk, {} as {}: {:.2f}x smaller\n", human_bytes(file_bytes),
             human_bytes(original_bytes), qk::io::dtype_name(m.dtype), ratio);
  if (!reference.empty()) print_error(err);
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
    std::string file, reference;
  };
  auto args = std::make_shared<Args>();
  auto* cmd =
      app.add_subcommand("inspect", "Statistics of a .npy, or spec, size and error of a quantized .npz");
  cmd->add_option("file", args->file, ".npy or .npz file")->required();
  cmd->add_option("--reference", args->reference,
                  "Original .npy: report MSE, max abs error and SQNR against it");
  return [args, &out] {
    if (has_suffix(args->file, ".npz")) {
      const auto names = qk::io::npz_names(args->file);
      if (std::find(names.begin(), names.end(), "meta") != names.end())
        return inspect_quantized(args->file, args->reference, out);
      if (!args->reference.empty()) throw UsageError("--reference needs a .npy or a quantized .npz");
      return inspect_npz(args->file, out);
    }
    return inspect_npy(args->file, args->reference, out);
  };
}

}  // namespace qtool
