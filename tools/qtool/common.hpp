// Shared pieces of the qtool subcommands: quantization flags, output helpers, progress, resource use.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "quantkit/calib/presets.hpp"
#include "quantkit/core/progress.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/files/file_error.hpp"
#include "quantkit/files/quantize_file.hpp"

namespace qtool {

// Thrown for command-line misuse found after parsing (exit code 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The quantization flags shared by quantize, fake-quant and calibrate. A --preset sets the defaults
// (weights for quantize/fake-quant, activations for calibrate); any flag given explicitly overrides it.
struct SpecOptions {
  enum class Role { kWeights, kActivations };

  int bits = 8;
  bool is_unsigned = false;
  bool is_signed = false;
  bool affine = false;
  bool symmetric = false;
  bool per_tensor = false;
  std::optional<int> axis;
  std::optional<std::int64_t> group_size;
  std::optional<std::int64_t> qmin, qmax;
  bool reduce_range = false;
  std::optional<float> scale;
  std::optional<std::int32_t> zero_point;
  bool allow_nonfinite = false;
  std::string preset;
  std::string scale_dtype = "f32";  // f32 | f16 (weights)
  std::string range_rule = "pytorch";  // pytorch | full (weights)

  void add_to(CLI::App& app, Role role);
  // Weights: the preset's weight spec or quantkit's default (qk::weight_spec_for_preset), then the
  // explicit flags.
  // For a codebook element (FP8, NF4) the start is qk::default_codebook_spec(element, rank) instead (NF4:
  // groups of 64), which the granularity flags override; codebook formats take no preset.
  qk::FileQuantOptions to_options(int rank, qk::ElementFormat element = qk::ElementFormat::kInt) const;
  // Activations: the preset's activation spec or quantkit's default (qk::activation_spec_for_preset),
  // then the flags.
  qk::QuantSpec activation_spec() const;
  // Lines saying what the preset chose and which flags overrode it.
  std::vector<std::string> explain(int rank) const;
  bool any_spec_flag() const;
  // Flags about integer codes (bits, signedness, scheme, range, preset, a fixed scale), as opposed to the
  // granularity flags (--per-tensor, --axis, --group-size), which codebook formats also take.
  bool any_integer_flag() const;
  bool any_granularity_flag() const;
  bool bits_given() const { return bits_opt_ != nullptr && bits_opt_->count() > 0; }

 private:
  void apply_flags(qk::QuantSpec& spec) const;
  const CLI::Option* bits_opt_ = nullptr;
  const CLI::Option* unsigned_opt_ = nullptr;
  const CLI::Option* signed_opt_ = nullptr;
  const CLI::Option* affine_opt_ = nullptr;
  const CLI::Option* symmetric_opt_ = nullptr;
  const CLI::Option* reduce_opt_ = nullptr;
  const CLI::Option* per_tensor_opt_ = nullptr;
  const CLI::Option* axis_opt_ = nullptr;
  const CLI::Option* group_opt_ = nullptr;
  const CLI::Option* qmin_opt_ = nullptr;
  const CLI::Option* scale_dtype_opt_ = nullptr;
  const CLI::Option* range_opt_ = nullptr;
};

struct Output {
  bool json = false;
};

// A progress reporter for the library's callbacks: draws a bar on stderr when stderr is a terminal and
// the work has run for more than a second; silent otherwise.
qk::ProgressFn make_progress(const std::string& label);
void finish_progress();

// What qtool adds to a library FileError's message: the flag or subcommand that remedies it.
const char* remedy_hint(qk::FileRemedy remedy);
// A preset's note in qtool's words: the granularity it may be switched to names the flag.
std::string preset_note(const qk::TargetPreset& preset);

std::uint64_t peak_rss_bytes();
std::string human_bytes(std::uint64_t bytes);
// "4.00x smaller" for a ratio original / new >= 1, "7.75x larger" below 1 (a tiny tensor's parameters
// and archive headers can outweigh it).
std::string size_change(double original_over_new);
void print_json(const nlohmann::json& j);

// Subcommand registration: each adds itself to app and returns the handler run when it is chosen.
using Handler = std::function<int()>;
Handler add_quantize(CLI::App& app, Output& out);
Handler add_fake_quant(CLI::App& app, Output& out);
Handler add_dequantize(CLI::App& app, Output& out);
Handler add_inspect(CLI::App& app, Output& out);
Handler add_demo(CLI::App& app, Output& out);
Handler add_bench(CLI::App& app, Output& out);
Handler add_calibrate(CLI::App& app, Output& out);
Handler add_embed(CLI::App& app, Output& out);
Handler add_mixed(CLI::App& app, Output& out);

}  // namespace qtool
