// The shared flow of `qtool quantize` and `qtool fake-quant`.
#include "file_quant.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "quantkit/calib/presets.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/files/calibration_file.hpp"
#include "quantkit/files/checkpoint_file.hpp"
#include "quantkit/files/inspect.hpp"
#include "quantkit/files/npy_header.hpp"
#include "quantkit/files/plan_file.hpp"
#include "quantkit/files/safetensors_quant.hpp"
#include "quantkit/files/tensor_input.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/qfile.hpp"

namespace qtool {

void add_file_quant_args(CLI::App& cmd, FileQuantArgs& args, const char* output_help, bool checkpoints) {
  cmd.add_option("input", args.input,
                 "Input .npy (float16/32/64), ARCHIVE.npz:KEY for one member, or a whole model (quantize "
                 "only): a checkpoint .npz, a .safetensors or a sharded model.safetensors.index.json");
  cmd.add_option("-o,--output", args.output, output_help);
  args.spec.add_to(cmd, SpecOptions::Role::kWeights);
  cmd.add_option("--calib", args.calib,
                 "Apply the parameters stored in this calibration file (qtool calibrate)");
  cmd.add_option("--tensor", args.tensor,
                 "Tensor name in the calibration file (default: the input's file stem)");
  cmd.add_option("--format", args.format,
                 "Element format: int (codes per the flags above), fp8-e4m3, fp8-e5m2 (scale = amax / "
                 "max finite; per channel by default) or nf4 (scale = absmax; groups of 64 by default)")
      ->capture_default_str();
  if (checkpoints) {
    cmd.add_option("--include", args.include,
                   "Whole model: quantize only tensors whose name matches this shell pattern (repeatable)");
    cmd.add_option(
        "--exclude", args.exclude,
        "Whole model: copy tensors whose name matches this shell pattern unquantized (repeatable)");
  }
  cmd.add_flag("--explain", args.explain,
               "Print what the preset and flags choose, then exit without quantizing");
}

namespace {

// A whole model: a checkpoint .npz, or a safetensors model when `safetensors`.
int run_checkpoint_quant(const FileQuantArgs& args, const Output& out, bool safetensors,
                         const qk::Plan* plan = nullptr) {
  qk::ElementFormat element = qk::ElementFormat::kInt;
  try {
    element = qk::parse_element_format(args.format);
  } catch (const qk::Error& e) {
    throw UsageError(e.what());
  }
  if (qk::is_codebook(element) && args.spec.any_integer_flag())
    throw UsageError(std::string("--format ") + args.format +
                     " fixes the codes: give only --per-tensor, --axis or --group-size");
  qk::CheckpointQuantOptions o;
  o.include = args.include;
  o.exclude = args.exclude;
  // Each member gets the spec for its rank (per channel on axis 0 by default), as a single tensor would.
  const SpecOptions& spec = args.spec;
  o.options_for = [&spec, element](const qk::Shape& shape) {
    qk::FileQuantOptions options = spec.to_options(static_cast<int>(shape.size()), element);
    options.element = element;
    return options;
  };
  o.plan = plan;
  o.progress = make_progress("quantize");
  const auto start = std::chrono::steady_clock::now();
  const qk::CheckpointReport r = safetensors ? qk::quantize_safetensors(args.input, args.output, o)
                                             : qk::quantize_checkpoint(args.input, args.output, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  finish_progress();
  std::int64_t quantized = 0, weights = 0;
  double payload_bits = 0;
  for (const qk::CheckpointEntry& e : r.members)
    if (e.quantized) {
      ++quantized;
      weights += e.report.numel;
      payload_bits += e.report.bits_per_weight * static_cast<double>(e.report.numel);
    }
  const double bits_per_weight = weights ? payload_bits / static_cast<double>(weights) : 0.0;
  if (out.json) {
    nlohmann::json members = nlohmann::json::array();
    for (const qk::CheckpointEntry& e : r.members) {
      nlohmann::json m{
          {"name", e.name}, {"shape", e.shape}, {"dtype", e.dtype_label}, {"quantized", e.quantized}};
      if (e.quantized) {
        m["bits_per_weight"] = e.report.bits_per_weight;
        if (!e.note.empty()) m["note"] = e.note;
      } else
        m["reason"] = e.reason;
      members.push_back(m);
    }
    print_json({{"input", args.input},
                {"output", args.output},
                {"kind", safetensors ? "safetensors" : "checkpoint"},
                {"members", members},
                {"input_bytes", r.input_bytes},
                {"output_bytes", r.output_bytes},
                {"bits_per_weight", bits_per_weight},
                {"seconds", seconds}});
    return 0;
  }
  fmt::print("quantized {} {} -> {}: {} of {} {} quantized, {:.2f} bits/weight\n",
             safetensors ? "safetensors model" : "checkpoint", args.input, args.output, quantized,
             r.members.size(), safetensors ? "tensor(s)" : "member(s)", bits_per_weight);
  for (const qk::CheckpointEntry& e : r.members)
    fmt::print("  {:<32} {:<16} {}\n", e.name, qk::shape_string(e.shape),
               e.quantized ? fmt::format("{:.2f} bits/weight{}", e.report.bits_per_weight,
                                         e.note.empty() ? "" : " (" + e.note + ")")
                           : "copied (" + e.reason + ")");
  const double ratio = r.output_bytes ? static_cast<double>(r.input_bytes) / static_cast<double>(r.output_bytes) : 0.0;
  fmt::print("  {} -> {} ({}), {:.3f} s\n", human_bytes(r.input_bytes), human_bytes(r.output_bytes),
             size_change(ratio), seconds);
  return 0;
}

}  // namespace

int run_file_quant(const FileQuantArgs& args, const Output& out, bool fake, const std::string& plan_path) {
  if (args.explain && args.format != "int")
    throw UsageError("--explain describes integer presets and flags; --format " + args.format +
                     " has no preset (see qtool quantize --help)");
  if (args.explain) {
    const int rank = args.input.empty() ? 2 : static_cast<int>(qk::read_npy_header(args.input).shape.size());
    const qk::FileQuantOptions options = args.spec.to_options(rank);
    const std::vector<std::string> lines = args.spec.explain(rank);
    const std::string weights = qk::describe_spec(options.spec);
    if (out.json) {
      print_json({{"input", args.input.empty() ? nlohmann::json(nullptr) : nlohmann::json(args.input)},
                  {"explain", lines},
                  {"weights", weights}});
      return 0;
    }
    for (const std::string& line : lines) fmt::print("{}\n", line);
    fmt::print("weights ({}): {}\n", args.input.empty() ? "a rank-2 array" : args.input, weights);
    return 0;
  }
  if (args.input.empty()) throw UsageError("the input .npy is required");
  if (args.output.empty()) throw UsageError("--output is required");
  // A quantized file is an .npz archive (fake-quant writes a float .npy): refuse a name that says otherwise
  // rather than write a zip under it.
  if (qk::is_safetensors_path(args.input)) {
    if (fake) throw UsageError("fake-quant takes one tensor: a .npy or ARCHIVE.npz:KEY");
    if (!args.calib.empty()) throw UsageError("--calib applies to one tensor (a .npy or ARCHIVE.npz:KEY)");
    if (!args.output.ends_with(".safetensors"))
      throw UsageError("-o " + args.output +
                       ": a safetensors model quantizes to a .safetensors; name the output "
                       "*.safetensors");
    if (!plan_path.empty()) {
      if (args.spec.any_spec_flag() || args.format != "int" || !args.include.empty() || !args.exclude.empty())
        throw UsageError(
            "--plan gives every tensor its format: no spec flags, --format, --include or --exclude");
      const qk::Plan plan = qk::read_plan(plan_path);
      return run_checkpoint_quant(args, out, /*safetensors=*/true, &plan);
    }
    return run_checkpoint_quant(args, out, /*safetensors=*/true);
  }
  const std::string want_suffix = fake ? ".npy" : ".npz";
  if (std::filesystem::path(args.output).extension() != want_suffix)
    throw UsageError(std::string("-o ") + args.output + ": " +
                     (fake ? "fake-quant writes a float .npy" : "a quantized file is an .npz archive") +
                     "; name the output *" + want_suffix);
  if (!args.tensor.empty() && args.calib.empty()) throw UsageError("--tensor needs --calib");
  // A whole .npz (not ARCHIVE.npz:KEY) is a checkpoint: every floating member of rank >= 2 is quantized.
  const bool checkpoint = args.input.ends_with(".npz") && !qk::parse_npz_member(args.input);
  if (!checkpoint && (!args.include.empty() || !args.exclude.empty()))
    throw UsageError("--include and --exclude select tensors of a whole model (.npz, .safetensors)");
  if (checkpoint) {
    if (fake) throw UsageError("fake-quant takes one tensor: a .npy or ARCHIVE.npz:KEY");
    if (!args.calib.empty()) throw UsageError("--calib applies to one tensor: name it as ARCHIVE.npz:KEY");
    return run_checkpoint_quant(args, out, /*safetensors=*/false);
  }
  const int rank = static_cast<int>(qk::read_npy_header(args.input).shape.size());
  qk::FileQuantOptions options;
  qk::ElementFormat element = qk::ElementFormat::kInt;
  try {
    element = qk::parse_element_format(args.format);
  } catch (const qk::Error& e) {
    throw UsageError(e.what());
  }
  if (qk::is_codebook(element)) {
    if (args.spec.any_integer_flag() || !args.calib.empty())
      throw UsageError(std::string("--format ") + args.format +
                       " fixes the codes: give only --per-tensor, --axis or --group-size");
    // The library's default for the format (qk::default_codebook_spec: NF4 in groups of 64, FP8 per
    // output channel) unless a granularity flag says otherwise.
    options = args.spec.to_options(rank, element);
    options.element = element;
  } else if (!args.calib.empty()) {
    if (args.spec.any_spec_flag() || args.spec.scale)
      throw UsageError("--calib brings its own quantization settings; drop the other quantization flags");
    const auto member = qk::parse_npz_member(args.input);
    const std::string name = !args.tensor.empty() ? args.tensor
                             : member            ? member->key
                                                 : std::filesystem::path(args.input).stem().string();
    qk::StoredParams stored = qk::read_calibrated_params(args.calib, name);
    options.spec = stored.params.spec;
    options.given_params = std::move(stored.params);
    options.nonfinite =
        args.spec.allow_nonfinite ? qk::NonFinitePolicy::kSaturate : qk::NonFinitePolicy::kReject;
  } else {
    options = args.spec.to_options(rank);
  }
  options.progress = make_progress(fake ? "fake-quant" : "quantize");
  const auto start = std::chrono::steady_clock::now();
  const qk::FileQuantReport r = fake ? qk::fake_quantize_file(args.input, args.output, options)
                                     : qk::quantize_file(args.input, args.output, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  finish_progress();
  // A codebook file's codes are unsigned 0 .. 2^bits - 1 with no zero point: report what the file says.
  const qk::QuantSpec spec = qk::is_codebook(options.element)
                                 ? qk::io::codebook_meta(options.element, options.spec, r.shape, r.dtype).spec
                                 : options.spec;
  const double ratio =
      r.output_bytes ? static_cast<double>(r.input_bytes) / static_cast<double>(r.output_bytes) : 0.0;
  const std::uint64_t peak_rss = peak_rss_bytes();  // before the error summary reads both files
  // fake-quant's purpose: the error it introduces, output against input (files/inspect.hpp's comparison;
  // not with saturated NaN/Inf, which have no error to speak of).
  std::optional<qk::ErrorStats> error;
  if (fake && r.nonfinite == 0) error = qk::summarize_npy(args.output, args.input).error;
  if (out.json) {
    nlohmann::json j;
    j["input"] = args.input;
    j["output"] = args.output;
    j["shape"] = r.shape;
    j["dtype"] = qk::io::dtype_name(r.dtype);
    j["format"] = qk::to_string(options.element);
    j["bits"] = r.code_bits;
    j["signed"] = spec.is_signed;
    j["scheme"] = qk::to_string(spec.scheme);
    j["granularity"] = qk::to_string(spec.granularity);
    j["quant_min"] = r.range.min;
    j["quant_max"] = r.range.max;
    j["scales"] = r.slots;
    j["input_bytes"] = r.input_bytes;
    j["output_bytes"] = r.output_bytes;
    if (!fake) j["bits_per_weight"] = r.bits_per_weight;
    j["scale_dtype"] = qk::to_string(spec.scale_dtype);
    j["range_rule"] = qk::to_string(spec.range_rule);
    j["nonfinite"] = r.nonfinite;
    j["seconds"] = seconds;
    j["gb_per_s"] = seconds > 0 ? static_cast<double>(r.input_bytes) / seconds / 1e9 : 0.0;
    j["peak_rss_bytes"] = peak_rss;
    if (error)
      j["error"] = {
          {"mse", error->mse},
          {"max_abs", error->max_abs},
          {"sqnr_db", std::isinf(error->sqnr_db) ? nlohmann::json(nullptr) : nlohmann::json(error->sqnr_db)}};
    print_json(j);
    return 0;
  }
  fmt::print("{} {} -> {}\n", fake ? "fake-quantized" : "quantized", args.input, args.output);
  if (qk::is_codebook(options.element)) {
    fmt::print("  shape {} {}, {} ({}-bit codes) {}, {} scale(s)\n", qk::shape_string(r.shape),
               qk::io::dtype_name(r.dtype), qk::to_string(options.element), r.code_bits,
               qk::describe_granularity(spec), r.slots);
  } else {
    fmt::print("  shape {} {}, {}-bit {} {} {}, codes [{}, {}], {} scale(s)\n", qk::shape_string(r.shape),
               qk::io::dtype_name(r.dtype), r.code_bits, spec.is_signed ? "signed" : "unsigned",
               qk::to_string(spec.scheme), qk::to_string(spec.granularity), r.range.min, r.range.max,
               r.slots);
  }
  if (!fake)
    fmt::print("  {} -> {} ({}), {:.2f} bits/weight ({} scales{})\n", human_bytes(r.input_bytes),
               human_bytes(r.output_bytes), size_change(ratio), r.bits_per_weight,
               spec.scale_dtype == qk::ScaleDType::kFloat16 ? "float16" : "float32",
               spec.range_rule == qk::RangeRule::kFull ? ", full range" : "");
  if (r.nonfinite) fmt::print("  {} non-finite value(s) saturated (--allow-nonfinite)\n", r.nonfinite);
  if (error)
    fmt::print("  error vs input: MSE {:.4e}, max abs {:.4g}, SQNR {}\n", error->mse, error->max_abs,
               std::isinf(error->sqnr_db) ? std::string("exact") : fmt::format("{:.2f} dB", error->sqnr_db));
  fmt::print("  {:.3f} s, {:.2f} GB/s, peak RSS {}\n", seconds,
             seconds > 0 ? static_cast<double>(r.input_bytes) / seconds / 1e9 : 0.0, human_bytes(peak_rss));
  return 0;
}

}  // namespace qtool
