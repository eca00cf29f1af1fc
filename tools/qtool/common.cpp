// Shared pieces of the qtool subcommands.
#include "common.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "quantkit/calib/presets.hpp"
#include "quantkit/ptq/defaults.hpp"

namespace qtool {

void SpecOptions::add_to(CLI::App& app, Role role) {
  const bool weights = role == Role::kWeights;
  std::vector<std::string> names;
  for (const qk::TargetPreset& p : qk::target_presets()) names.emplace_back(p.name);
  app.add_option(
         "--preset", preset,
         "Target preset: generic, ane, hexagon, edgetpu or x86 (sets the defaults below; flags override)")
      ->check(CLI::IsMember(names));
  bits_opt_ = app.add_option("--bits", bits, "Bits per code, 2..8 (default 8)")->check(CLI::Range(2, 8));
  auto* u = app.add_flag("--unsigned", is_unsigned, "Unsigned codes (uint8 storage) instead of signed");
  auto* sg = app.add_flag("--signed", is_signed, "Signed codes (int8 storage; the default without a preset)");
  u->excludes(sg);
  unsigned_opt_ = u;
  signed_opt_ = sg;
  auto* af = app.add_flag("--affine", affine, "Affine (asymmetric) instead of symmetric");
  auto* sy = app.add_flag("--symmetric", symmetric, "Symmetric (the default without a preset)");
  af->excludes(sy);
  affine_opt_ = af;
  symmetric_opt_ = sy;
  auto* pt = app.add_flag("--per-tensor", per_tensor, "One scale for the whole tensor");
  auto* ax = app.add_option("--axis", axis, "Per-channel along this axis (negative counts from the end)");
  pt->excludes(ax);
  per_tensor_opt_ = pt;
  axis_opt_ = ax;
  CLI::Option* gs = nullptr;
  if (weights) {
    gs = app.add_option("--group-size", group_size,
                        "Per-group: groups of G consecutive elements along the last axis");
    pt->excludes(gs);
    ax->excludes(gs);
    group_opt_ = gs;
  }
  auto* lo = app.add_option("--qmin", qmin, "Explicit lowest code (with --qmax; overrides --bits)");
  auto* hi = app.add_option("--qmax", qmax, "Explicit highest code (with --qmin)");
  lo->needs(hi);
  hi->needs(lo);
  qmin_opt_ = lo;
  reduce_opt_ = app.add_flag("--reduce-range", reduce_range,
                             "Halve the integer range (FBGEMM-style 7-bit activations)");
  if (weights) {
    auto* sc =
        app.add_option("--scale", scale, "Fixed per-tensor scale: skip the observer (with --zero-point)");
    auto* zp = app.add_option("--zero-point", zero_point, "Fixed per-tensor zero point (with --scale)");
    sc->needs(zp);
    zp->needs(sc);
    sc->excludes(ax)->excludes(gs);
    scale_dtype_opt_ = app.add_option("--scale-dtype", scale_dtype,
                                      "How scales are stored: f32 (default) or f16 (as ggml and GPTQ/AWQ "
                                      "checkpoints; codes are computed with the rounded scale)")
                           ->check(CLI::IsMember({"f32", "f16"}));
    range_opt_ = app.add_option("--range", range_rule,
                                "Symmetric range rule: pytorch (default, scale = amax / 7.5 at 4 bits, "
                                "bit-exact with PyTorch) or full (ggml's Q4_0: the value of largest "
                                "magnitude maps to the lowest code, e.g. -8, with its sign)")
                     ->check(CLI::IsMember({"pytorch", "full"}));
    app.add_flag(
        "--allow-nonfinite", allow_nonfinite,
        "Accept NaN/Inf: they are left out of the range, +Inf/-Inf saturate to qmax/qmin, NaN becomes "
        "the zero point");
  }
}

bool SpecOptions::any_spec_flag() const {
  for (const CLI::Option* o :
       {bits_opt_, unsigned_opt_, signed_opt_, affine_opt_, symmetric_opt_, reduce_opt_, per_tensor_opt_,
        axis_opt_, group_opt_, qmin_opt_, scale_dtype_opt_, range_opt_}) {
    if (o && o->count() > 0) return true;
  }
  return !preset.empty();
}

bool SpecOptions::any_integer_flag() const {
  for (const CLI::Option* o : {bits_opt_, unsigned_opt_, signed_opt_, affine_opt_, symmetric_opt_,
                               reduce_opt_, qmin_opt_, range_opt_}) {
    if (o && o->count() > 0) return true;
  }
  return !preset.empty() || scale.has_value();
}

bool SpecOptions::any_granularity_flag() const { return per_tensor || axis || group_size; }

void SpecOptions::apply_flags(qk::QuantSpec& spec) const {
  if (bits_opt_->count()) spec.bits = bits;
  if (is_unsigned) spec.is_signed = false;
  if (is_signed) spec.is_signed = true;
  if (affine) spec.scheme = qk::Scheme::kAffine;
  if (symmetric) spec.scheme = qk::Scheme::kSymmetric;
  if (reduce_range) spec.reduce_range = true;
  if (qmin) {
    spec.quant_min = *qmin;
    spec.quant_max = *qmax;
  }
  if (scale_dtype == "f16") spec.scale_dtype = qk::ScaleDType::kFloat16;
  if (range_rule == "full") {
    if (!spec.is_signed || spec.scheme != qk::Scheme::kSymmetric)
      throw UsageError("--range full needs signed symmetric codes");
    spec.range_rule = qk::RangeRule::kFull;
  }
  if (per_tensor) {
    spec.granularity = qk::Granularity::kPerTensor;
  } else if (axis) {
    spec.granularity = qk::Granularity::kPerChannel;
    spec.axis = *axis;
  } else if (group_size) {
    spec.granularity = qk::Granularity::kPerGroup;
    spec.group_size = *group_size;
  }
}

qk::FileQuantOptions SpecOptions::to_options(int rank, qk::ElementFormat element) const {
  qk::FileQuantOptions options;
  qk::QuantSpec& spec = options.spec;
  spec = qk::is_codebook(element) ? qk::default_codebook_spec(element, rank)
                                  : qk::weight_spec_for_preset(preset, rank);
  options.element = element;
  apply_flags(spec);
  if (scale) {
    spec.granularity = qk::Granularity::kPerTensor;
    options.fixed_params = qk::QParams{*scale, *zero_point};
  }
  options.nonfinite = allow_nonfinite ? qk::NonFinitePolicy::kSaturate : qk::NonFinitePolicy::kReject;
  return options;
}

qk::QuantSpec SpecOptions::activation_spec() const {
  qk::QuantSpec spec = qk::activation_spec_for_preset(preset);
  apply_flags(spec);
  spec.validate();
  return spec;
}

std::vector<std::string> SpecOptions::explain(int rank) const {
  std::vector<std::string> lines;
  if (preset.empty()) {
    lines.push_back("no preset: quantkit's defaults");
  } else {
    const qk::TargetPreset& p = qk::find_preset(preset);
    lines.push_back(fmt::format("preset {}: {}", p.name, p.target));
    lines.push_back(fmt::format("  {}", preset_note(p)));
    lines.push_back(
        fmt::format("  preset weights:     {}", qk::describe_spec(qk::preset_weight_spec(p, rank))));
    lines.push_back(fmt::format("  preset activations: {}, {}",
                                qk::describe_spec(qk::preset_activation_spec(p)),
                                p.dynamic_activations ? "dynamic (computed per batch at run time)"
                                                      : "static (from qtool calibrate)"));
  }
  std::vector<std::string> given;
  for (const CLI::Option* o : {bits_opt_, unsigned_opt_, signed_opt_, affine_opt_, symmetric_opt_,
                               reduce_opt_, per_tensor_opt_, axis_opt_, group_opt_, qmin_opt_}) {
    if (o && o->count() > 0) given.push_back(o->get_name());
  }
  if (!given.empty()) {
    std::string joined;
    for (const std::string& g : given) joined += (joined.empty() ? "" : " ") + g;
    lines.push_back("explicit flags override: " + joined);
  }
  return lines;
}

namespace {
struct ProgressState {
  std::chrono::steady_clock::time_point start;
  bool drawn = false;
};
ProgressState g_progress;
}  // namespace

const char* remedy_hint(qk::FileRemedy remedy) {
  switch (remedy) {
    case qk::FileRemedy::kSaturateNonFinite:
      return " (use --allow-nonfinite to saturate them)";
    case qk::FileRemedy::kGiveActivations:
      return " (--acts)";
    case qk::FileRemedy::kSaveEmbeddingTable:
      return "; write one with qtool embed --save";
    case qk::FileRemedy::kUseAsEmbeddingTable:
      return "; open it with qtool embed --table";
    case qk::FileRemedy::kUseAsCalibration:
      return "; apply it with qtool quantize --calib";
    case qk::FileRemedy::kUseAsPlan:
      return "; apply a plan with qtool quantize --plan";
    case qk::FileRemedy::kUseAsQuantizedTensor:
      return "; read it with qtool inspect or qtool dequantize";
    case qk::FileRemedy::kUseAsArray:
      return "; quantize it with qtool quantize";
  }
  return "";
}

std::string preset_note(const qk::TargetPreset& preset) {
  std::string note = preset.note;
  const std::string words = "or per-tensor)";
  if (const auto at = note.find(words); at != std::string::npos) note.insert(at + 3, "--");
  return note;
}

// Seconds a run goes before its bar appears: 1, or QTOOL_PROGRESS_DELAY (0 draws at once; the tests use it).
double progress_delay() {
  const char* text = std::getenv("QTOOL_PROGRESS_DELAY");
  if (text == nullptr || *text == '\0') return 1.0;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  return (*end == '\0' && v >= 0.0 && std::isfinite(v)) ? v : 1.0;
}

qk::ProgressFn make_progress(const std::string& label) {
  g_progress = {std::chrono::steady_clock::now(), false};
  if (!isatty(STDERR_FILENO)) return {};
  return [label, delay = progress_delay()](double fraction) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - g_progress.start).count();
    if (elapsed < delay) return;
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

std::string size_change(double original_over_new) {
  if (original_over_new >= 1.0 || original_over_new <= 0.0)
    return fmt::format("{:.2f}x smaller", original_over_new);
  return fmt::format("{:.2f}x larger", 1.0 / original_over_new);
}

}  // namespace qtool
