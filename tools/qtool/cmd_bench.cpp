// qtool bench [--size N] [--batch B] [--threads T] [--repeat R]: GEMV/GEMM throughput of FP32 (Eigen),
// FP16, INT8 and INT4 weights, GEMV on NF4, Q4DQ and ggml's Q8_0/Q4_0/Q4_K, quantize/dequantize and memcpy,
// measured in one run (library: perf/).
#include <fmt/format.h>

#include "common.hpp"
#include "perf/gemm_bench.hpp"

namespace qtool {

namespace {

nlohmann::json optional_number(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

// A ratio's median in JSON, and its interquartile range as [low, high] under `name`_iqr.
void add_spread(nlohmann::json& row, const std::string& name, const std::optional<qk::perf::Spread>& s) {
  row[name] = s ? nlohmann::json(s->median) : nlohmann::json(nullptr);
  row[name + "_iqr"] = s ? nlohmann::json::array({s->low, s->high}) : nlohmann::json(nullptr);
}

// "2.95x (2.90-3.01)": the median and the interquartile range over the rounds.
std::string spread_text(const std::optional<qk::perf::Spread>& s, const char* unit) {
  if (!s) return "-";
  return fmt::format("{:.2f}{} ({:.2f}-{:.2f})", s->median, unit, s->low, s->high);
}

}  // namespace

Handler add_bench(CLI::App& app, Output& out) {
  auto options = std::make_shared<qk::perf::BenchOptions>();
  auto* cmd = app.add_subcommand(
      "bench", "Time FP32/FP16/INT8/INT4 GEMV and GEMM, quantize, dequantize and memcpy on this machine");
  cmd->add_option("--size", options->size, "Weights are SIZE x SIZE (default 4096)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{32768}));
  cmd->add_option("--batch", options->batch, "Rows of X for the GEMM cases (default 64)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{4096}));
  cmd->add_option("--threads", options->threads, "Threads that split the weight rows (default 1)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--repeat", options->repeat,
                  "Timed rounds after a warm-up round; each times every case once (default 21)")
      ->check(CLI::Range(1, 10000));
  return [options, &out] {
    const auto progress = make_progress("bench");
    int step = 0;
    // Steps: preparing the weights, the warm-up round, then the timed rounds.
    const qk::perf::BenchReport report = qk::perf::run_gemm_bench(*options, [&](const std::string&) {
      if (progress) progress(step++ / (options->repeat + 2.0));
    });
    if (progress) progress(1.0);
    finish_progress();
    const auto& m = report.machine;
    if (out.json) {
      nlohmann::json results = nlohmann::json::array();
      for (const auto& r : report.results) {
        nlohmann::json row = {{"name", r.name},
                              {"format", r.format},
                              {"bits_per_weight", r.bits_per_weight > 0 ? nlohmann::json(r.bits_per_weight)
                                                                        : nlohmann::json(nullptr)},
                              {"bytes", r.bytes},
                              {"median_us", r.median_us},
                              {"min_us", r.min_us},
                              {"max_us", r.max_us},
                              {"gbps", r.gbps},
                              {"gflops", r.gflops > 0 ? nlohmann::json(r.gflops) : nlohmann::json(nullptr)},
                              {"max_abs_error", optional_number(r.max_abs_error)},
                              {"reference_max_abs", optional_number(r.reference_max_abs)}};
        add_spread(row, "speedup_vs_fp32", r.speedup_vs_fp32);
        add_spread(row, "fraction_of_bandwidth_limit", r.fraction_of_limit);
        results.push_back(std::move(row));
      }
      print_json({{"machine",
                   {{"cpu", m.cpu},
                    {"isa", m.isa},
                    {"detected_isa", m.detected_isa},
                    {"logical_cpus", m.logical_cpus},
                    {"last_level_cache_bytes", m.last_level_cache_bytes},
                    {"read_gbps", report.read_gbps},
                    {"cold_weights", report.cold}}},
                  {"options",
                   {{"size", report.options.size},
                    {"batch", report.options.batch},
                    {"threads", report.options.threads},
                    {"repeat", report.options.repeat}}},
                  {"seconds", report.seconds},
                  {"results", results}});
      return 0;
    }
    fmt::print("qtool bench: {} ({} path; CPU supports {}), {} logical CPUs, last-level cache {} MiB\n",
               m.cpu, m.isa, m.detected_isa, m.logical_cpus, m.last_level_cache_bytes >> 20);
    fmt::print(
        "weights {}x{}, GEMM batch {}, {} thread(s), {} interleaved rounds after a warm-up round; cold "
        "weights: "
        "{}\n",
        options->size, options->size, options->batch, options->threads, options->repeat, report.cold);
    fmt::print("streaming read, {} thread(s): {:.1f} GB/s (the GEMV limit is weight bytes / this)\n\n",
               report.options.threads, report.read_gbps);
    fmt::print(
        "| case | bits/weight | weight bytes | median us | min-max us | GB/s | GFLOP/s | vs FP32 (IQR) | of "
        "BW "
        "limit (IQR) | max abs err |\n");
    fmt::print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& r : report.results) {
      fmt::print("| {} | {} | {} | {:.1f} | {:.0f}-{:.0f} | {:.1f} | {} | {} | {} | {} |\n", r.name,
                 r.bits_per_weight > 0 ? fmt::format("{:.2f}", r.bits_per_weight) : "-", r.bytes, r.median_us,
                 r.min_us, r.max_us, r.gbps, r.gflops > 0 ? fmt::format("{:.1f}", r.gflops) : "-",
                 spread_text(r.speedup_vs_fp32, "x"), spread_text(r.fraction_of_limit, ""),
                 r.max_abs_error ? fmt::format("{:.3g}", *r.max_abs_error) : "-");
    }
    fmt::print(
        "\nINT8/INT4 quantize the activations per row to uint8 on each call (PyTorch's dynamic rule, 7-bit) "
        "and\n"
        "accumulate in int32; INT4 uses groups of 32. GB/s counts weight bytes (scales included) for "
        "GEMV/GEMM and\n"
        "float32 bytes for quantize (observe + quantize per channel), dequantize and memcpy. Errors are "
        "against\n"
        "the FP32 output of the same inputs; for quantize/int8, the round-trip error of the weights. Ratios "
        "are\n"
        "taken round by round (FP32 and the case ran milliseconds apart) and given as median (interquartile "
        "range).\n"
        "q8_0, q4_0, q4_k: ggml's blocks; as ggml's CPU backend, x goes to Q8_0 (Q8_K for q4_k)\n"
        "on each call, then exact integer block dot products (scalar, AVX2 or AVX-512 VNNI kernels: the\n"
        "path named on the first line).\n");
    fmt::print("The run took {:.1f} s.\n", report.seconds);
    return 0;
  };
}

}  // namespace qtool
