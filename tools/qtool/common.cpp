// Shared pieces of the qtool subcommands.
#include "common.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

namespace qtool {

void SpecOptions::add_to(CLI::App& app) {
  app.add_option("--bits", bits, "Bits per code, 2..8 (default 8)");
  app.add_flag("--unsigned", is_unsigned, "Unsigned codes (uint8 storage) instead of signed");
  app.add_flag("--affine", affine, "Affine (asymmetric) instead of symmetric");
  auto* pt = app.add_flag("--per-tensor", per_tensor, "One scale for the whole tensor");
  auto* ax = app.add_option("--axis", axis, "Per-channel along this axis (negative counts from the end)");
  auto* gs = app.add_option("--group-size", group_size,
                            "Per-group: groups of G consecutive elements along the last axis");
  pt->excludes(ax)->excludes(gs);
  ax->excludes(gs);
  auto* lo = app.add_option("--qmin", qmin, "Explicit lowest code (with --qmax; overrides --bits)");
  auto* hi = app.add_option("--qmax", qmax, "Explicit highest code (with --qmin)");
  lo->needs(hi);
  hi->needs(lo);
  app.add_flag("--reduce-range", reduce_range, "Halve the integer range (FBGEMM-style 7-bit activations)");
  auto* sc =
      app.add_option("--scale", scale, "Fixed per-tensor scale: skip the observer (with --zero-point)");
  auto* zp = app.add_option("--zero-point", zero_point, "Fixed per-tensor zero point (with --scale)");
  sc->needs(zp);
  zp->needs(sc);
  sc->excludes(ax)->excludes(gs);
  app.add_flag("--allow-nonfinite", allow_nonfinite,
               "Accept NaN/Inf: they are left out of the range, +Inf/-Inf saturate to qmax/qmin, NaN becomes "
               "the zero point");
}

qk::FileQuantOptions SpecOptions::to_options(int rank) const {
  qk::FileQuantOptions options;
  qk::QuantSpec& spec = options.spec;
  spec = qk::default_weight_spec(rank);
  spec.bits = bits;
  spec.is_signed = !is_unsigned;
  spec.scheme = affine ? qk::Scheme::kAffine : qk::Scheme::kSymmetric;
  spec.reduce_range = reduce_range;
  if (qmin) {
    spec.quant_min = *qmin;
    spec.quant_max = *qmax;
  }
  if (per_tensor || scale) {
    spec.granularity = qk::Granularity::kPerTensor;
  } else if (axis) {
    spec.granularity = qk::Granularity::kPerChannel;
    spec.axis = *axis;
  } else if (group_size) {
    spec.granularity = qk::Granularity::kPerGroup;
    spec.group_size = *group_size;
  }
  if (scale) options.fixed_params = qk::QParams{*scale, *zero_point};
  options.nonfinite = allow_nonfinite ? qk::NonFinitePolicy::kSaturate : qk::NonFinitePolicy::kReject;
  return options;
}

namespace {
struct ProgressState {
  std::chrono::steady_clock::time_point start;
  bool drawn = false;
};
ProgressState g_progress;
}  // namespace

std::function<void(double)> make_progress(const std::string& label) {
  g_progress = {std::chrono::steady_clock::now(), false};
  if (!isatty(STDERR_FILENO)) return {};
  return [label](double fraction) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - g_progress.start).count();
    if (elapsed < 1.0) return;
    const int width = 30;
    const int filled = static_cast<int>(fraction * width + 0.5);
    std::fprintf(stderr, "\r%s [%s%s] %3.0f%% %.1fs", label.c_str(),
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), fraction * 100.0,
                 elapsed);
    g_progress.drawn = true;
  };
}

void finish_progress() {
  if (g_progress.drawn) std::fprintf(stderr, "\n");
  g_progress.drawn = false;
}

std::uint64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

std::string human_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, units[u]);
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

}  // namespace qtool
