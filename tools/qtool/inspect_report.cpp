// Printing the parts of qtool inspect's reports: statistics, errors against a reference, a method record.
#include "inspect_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "quantkit/files/checkpoint_file.hpp"
#include "quantkit/files/inspect.hpp"

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
  return {{"mse", e.mse},
          {"max_abs_error", e.max_abs},
          {"sqnr_db", std::isinf(e.sqnr_db) ? nlohmann::json(nullptr) : nlohmann::json(e.sqnr_db)}};
}

// qtool inspect on a quantized checkpoint: one row per quantized member, errors against --reference.
int inspect_checkpoint(const std::string& path, const std::string& reference, bool json) {
  const std::vector<qk::CheckpointTensorSummary> rows = qk::summarize_checkpoint(path, reference);
  const qk::CheckpointIndex index = qk::read_checkpoint_index(path);
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
    print_json({{"file", path}, {"kind", "quantized_checkpoint"}, {"quantized", j}, {"copied", index.copied}});
    return 0;
  }
  fmt::print("{}: quantized checkpoint, {} quantized and {} copied member(s)\n\n", path, rows.size(),
             index.copied.size());
  fmt::print("| member | shape | format | bits/weight |{}\n|---|---|---|---:|{}\n",
             reference.empty() ? "" : " MSE | SQNR dB |", reference.empty() ? "" : "---:|---:|");
  for (const auto& r : rows) {
    fmt::print("| {} | {} | {} | {:.2f} |", r.name, qk::shape_string(r.meta.shape), qk::format_label(r.meta),
               r.bits_per_weight);
    if (r.has_reference) fmt::print(" {:.4e} | {:.2f} |", r.error.mse, r.error.sqnr_db);
    fmt::print("\n");
  }
  if (!index.copied.empty()) {
    std::string names;
    for (const auto& n : index.copied) names += (names.empty() ? "" : ", ") + n;
    fmt::print("\ncopied: {}\n", names);
  }
  return 0;
}

}  // namespace qtool
