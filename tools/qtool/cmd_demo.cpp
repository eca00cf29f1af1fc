// qtool demo [--data DIR] [--group-size G] [--layers]: quantizes the bundled real weights (Silero VAD v5)
// to FP16, INT8 per channel and INT4 per group and prints what each format costs and keeps.
#include <fmt/format.h>

#include <filesystem>
#include <vector>

#include "common.hpp"
#include "quantkit/files/manifest.hpp"
#include "quantkit/ptq/evaluate.hpp"

#ifndef QK_DEMO_DATA_DIR
#define QK_DEMO_DATA_DIR ""
#endif
#ifndef QK_DEMO_INSTALLED_DATA_DIR
#define QK_DEMO_INSTALLED_DATA_DIR ""
#endif
#ifndef QK_DEMO_DATA_DIR_FROM_BINDIR
#define QK_DEMO_DATA_DIR_FROM_BINDIR ""
#endif

namespace qtool {

namespace {

// Where the bundled weights are, in order: --data; beside the running executable as installed
// (<prefix>/bin/qtool -> <prefix>/share/quantkit/data/..., so a moved or copied prefix still works); the
// prefix configured at build time; the source tree (a qtool run from its build folder).
std::string find_data_dir(const std::string& given) {
  if (!given.empty()) return given;
  std::vector<std::filesystem::path> candidates;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && *QK_DEMO_DATA_DIR_FROM_BINDIR)
    candidates.push_back(exe.parent_path() / QK_DEMO_DATA_DIR_FROM_BINDIR);
  for (const char* dir : {QK_DEMO_INSTALLED_DATA_DIR, QK_DEMO_DATA_DIR})
    if (*dir) candidates.emplace_back(dir);
  for (const auto& dir : candidates)
    if (std::filesystem::exists(dir / "manifest.json", ec)) return dir.lexically_normal().string();
  throw qk::Error("the bundled weights were not found; pass --data DIR (a folder with manifest.json)");
}

std::string sqnr_text(double db) { return std::isinf(db) ? "exact" : fmt::format("{:.2f}", db); }

}  // namespace

Handler add_demo(CLI::App& app, Output& out) {
  struct Args {
    std::string data;
    std::int64_t group_size = 32;
    bool layers = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd =
      app.add_subcommand("demo", "Quantize the bundled real weights and compare FP32 / FP16 / INT8 / INT4");
  cmd->add_option("--data", args->data,
                  "Folder with manifest.json and .npy layers (default: the bundled Silero VAD weights)");
  cmd->add_option("--group-size", args->group_size, "INT4 group size (default 32)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  cmd->add_flag("--layers", args->layers, "Also print one row per layer and format");
  return [args, &out] {
    const std::string dir = find_data_dir(args->data);
    const auto layers = qk::load_manifest_layers(dir);
    std::vector<qk::FormatResult> results;
    const auto formats = {qk::WeightFormat::kFP32, qk::WeightFormat::kFP16, qk::WeightFormat::kInt8PerChannel,
                          qk::WeightFormat::kInt4PerGroup};
    const auto progress = make_progress("demo");  // draws only when the run passes a second (--data DIR)
    for (const auto f : formats) {
      if (progress) progress(static_cast<double>(results.size()) / static_cast<double>(formats.size()));
      results.push_back(qk::evaluate_format(layers, f, args->group_size));
    }
    if (progress) progress(1.0);
    finish_progress();
    const double fp32_bytes = static_cast<double>(results[0].bytes);
    if (out.json) {
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& r : results) {
        nlohmann::json layer_rows = nlohmann::json::array();
        for (const auto& l : r.layers) {
          layer_rows.push_back({{"name", l.name},
                                {"bytes", l.bytes},
                                {"sqnr_db", std::isinf(l.error.sqnr_db) ? nlohmann::json(nullptr)
                                                                        : nlohmann::json(l.error.sqnr_db)},
                                {"max_abs_error", l.error.max_abs},
                                {"group_size", l.group_size}});
        }
        rows.push_back({{"format", qk::to_string(r.format)},
                        {"bytes", r.bytes},
                        {"ratio", fp32_bytes / static_cast<double>(r.bytes)},
                        {"bits_per_weight", r.bits_per_weight},
                        {"sqnr_db", std::isinf(r.error.sqnr_db) ? nlohmann::json(nullptr)
                                                                : nlohmann::json(r.error.sqnr_db)},
                        {"max_abs_error", r.error.max_abs},
                        {"mse", r.error.mse},
                        {"seconds", r.seconds},
                        {"layers", layer_rows}});
      }
      print_json(
          {{"data", dir}, {"weights", results[0].weights}, {"layers", layers.size()}, {"results", rows}});
      return 0;
    }
    fmt::print("quantkit demo: {} layers, {} weights from {}\n\n", layers.size(), results[0].weights, dir);
    fmt::print("| format | bytes | ratio | bits/weight | SQNR dB | max abs error | time ms |\n");
    fmt::print("|---|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& r : results) {
      fmt::print("| {} | {} | {:.2f}x | {:.2f} | {} | {:.3g} | {:.3f} |\n", qk::to_string(r.format), r.bytes,
                 fp32_bytes / static_cast<double>(r.bytes), r.bits_per_weight, sqnr_text(r.error.sqnr_db),
                 r.error.max_abs, r.seconds * 1e3);
    }
    fmt::print(
        "\nbytes count codes plus float32 scales (int32 zero points only where one is not 0, as in the "
        "file); SQNR over all weights; time is the "
        "median of 5\n"
        "runs of quantize + dequantize (FP16: convert and back). INT4 groups of {} run along each output "
        "row,\n"
        "or along the flattened layer where {} does not divide the row.\n",
        args->group_size, args->group_size);
    if (args->layers) {
      fmt::print(
          "\n| layer | format | bytes | SQNR dB | max abs error | group |\n|---|---|---:|---:|---:|---:|\n");
      for (const auto& r : results) {
        for (const auto& l : r.layers) {
          fmt::print("| {} | {} | {} | {} | {:.3g} | {} |\n", l.name, qk::to_string(r.format), l.bytes,
                     sqnr_text(l.error.sqnr_db), l.error.max_abs,
                     l.group_size ? std::to_string(l.group_size) : "-");
        }
      }
    }
    return 0;
  };
}

}  // namespace qtool
