// qtool quantize IN.npy -o OUT.npz [spec options] [--format int|fp8-e4m3|fp8-e5m2|nf4]
// qtool quantize --plan plan.json --out-dir DIR   (a mixed-precision plan from qtool mixed)
// qtool quantize W.npy -o OUT.npz --method rtn|importance|awq|gptq|smoothquant --acts X.npy... [--bits B]
//                [--group-size G] [--damp D] [--act-order] [--alpha A]
#include <fmt/format.h>

#include <optional>

#include "file_quant.hpp"
#include "quantkit/files/npy_header.hpp"
#include "quantkit/files/plan_file.hpp"
#include "quantkit/files/weight_method_file.hpp"
#include "quantkit/outlier/method_options.hpp"

namespace qtool {

namespace {

int run_plan(const FileQuantArgs& args, const std::string& plan_path, const std::string& out_dir,
             const Output& out) {
  if (!args.input.empty() || !args.output.empty() || args.spec.any_spec_flag() || !args.calib.empty())
    throw UsageError("--plan brings the input files and formats; give only --out-dir");
  if (out_dir.empty()) throw UsageError("--plan needs --out-dir DIR");
  const qk::Plan plan = qk::read_plan(plan_path);
  const std::uint64_t written = qk::apply_plan(plan, out_dir, {plan_path});
  if (out.json) {
    nlohmann::json j;
    j["plan"] = plan_path;
    j["out_dir"] = out_dir;
    j["layers"] = plan.layers.size();
    j["weights"] = plan.total_weights();
    j["average_bits"] = plan.average_bits();
    j["plan_bytes"] = plan.total_bytes();
    j["written_bytes"] = written;
    print_json(j);
    return 0;
  }
  fmt::print("applied {} ({} layers, {:.3f} average bits) -> {}\n", plan_path, plan.layers.size(),
             plan.average_bits(), out_dir);
  for (const auto& l : plan.layers) fmt::print("  {:<24} {}\n", l.name, qk::to_string(l.format));
  fmt::print("  {} written (manifest.json lists the files)\n", human_bytes(written));
  return 0;
}

struct MethodArgs {
  std::string method;
  std::vector<std::string> acts;
  std::optional<double> damp;   // gptq
  bool act_order = false;       // gptq
  std::optional<double> alpha;  // smoothquant
  bool any_option() const { return damp || act_order || alpha; }
};

// The library's problem with a method request, said in qtool's option names.
std::string method_flag_message(qk::MethodOptionProblem problem, const std::string& method) {
  switch (problem) {
    case qk::MethodOptionProblem::kNeedsActivations:
      return "--method " + method + " needs --acts X.npy";
    case qk::MethodOptionProblem::kGptqOption:
      return "--damp and --act-order are gptq options";
    case qk::MethodOptionProblem::kSmoothQuantOption:
      return "--alpha is a smoothquant option";
    case qk::MethodOptionProblem::kDampOutOfRange:
      return "--damp must be >= 0";
    case qk::MethodOptionProblem::kAlphaOutOfRange:
      return "--alpha must lie in [0, 1]";
  }
  return "bad --method options";
}

int run_method(const FileQuantArgs& args, const MethodArgs& m, const Output& out) {
  const SpecOptions& spec = args.spec;
  if (spec.is_unsigned || spec.affine || spec.per_tensor || spec.axis || spec.qmin || spec.qmax ||
      spec.reduce_range || spec.scale || spec.zero_point || !spec.preset.empty() || !args.calib.empty())
    throw UsageError(
        "--method takes only --bits, --group-size, --scale-dtype and --range (codes are signed symmetric)");
  if (args.input.empty() || args.output.empty())
    throw UsageError("--method needs the weight .npy and -o OUT.npz");
  qk::MethodRequest request;
  try {
    request.method = qk::parse_weight_method(m.method);
  } catch (const qk::Error& e) {
    throw UsageError(e.what());
  }
  request.has_activations = !m.acts.empty();
  // Without --bits / --group-size the method's defaults (4-bit groups of 128 for GPTQ-style methods,
  // W8A8 for smoothquant): the library's policy, outlier/method_options.hpp.
  const qk::Shape shape = qk::read_npy_header(args.input).shape;
  const std::int64_t in_features = shape.empty() ? 0 : shape.back();
  request.bits = spec.bits_given() ? spec.bits : qk::default_method_bits(request.method);
  request.group_size =
      spec.group_size ? *spec.group_size : qk::default_method_group_size(request.method, in_features);
  request.scale_dtype = spec.scale_dtype == "f16" ? qk::ScaleDType::kFloat16 : qk::ScaleDType::kFloat32;
  request.range_rule = spec.range_rule == "full" ? qk::RangeRule::kFull : qk::RangeRule::kPyTorch;
  request.damp = m.damp;
  request.act_order = m.act_order;
  request.alpha = m.alpha;
  try {
    qk::validate_method_request(request);
  } catch (const qk::MethodOptionError& e) {
    throw UsageError(method_flag_message(e.problem(), m.method));
  }
  const qk::WeightQuantOptions o = qk::method_options(request);
  const qk::MethodFileReport r = qk::quantize_file_with_method(args.input, m.acts, args.output,
                                                               request.method, o, make_progress("calibrate"));
  finish_progress();
  if (out.json) {
    nlohmann::json j;
    j["input"] = args.input;
    j["output"] = args.output;
    j["method"] = m.method;
    j["bits"] = o.bits;
    j["group_size"] = o.group_size;
    j["shape"] = {r.out, r.in};
    j["calibration_rows"] = r.calibration_rows;
    j["weight_mse"] = r.weight_mse;
    j["output_error"] = r.result.output_error;
    j["rtn_output_error"] = r.rtn_output_error;
    j["alpha"] = r.result.alpha;
    j["input_scale"] = !r.result.input_scale.empty();
    j["output_bytes"] = r.output_bytes;
    j["bits_per_weight"] = r.bits_per_weight;
    j["scale_dtype"] = qk::to_string(o.scale_dtype);
    j["range_rule"] = qk::to_string(o.range_rule);
    print_json(j);
    return 0;
  }
  fmt::print("{} {} -> {} ({}-bit, {}, {} calibration rows)\n", m.method, args.input, args.output, o.bits,
             o.group_size ? fmt::format("groups of {}", o.group_size) : std::string("per channel"),
             r.calibration_rows);
  fmt::print("  weight MSE {:.4e}", r.weight_mse);
  if (r.result.output_error > 0) fmt::print(", output error {:.4e}", r.result.output_error);
  if (r.rtn_output_error > 0) fmt::print(" (rtn: {:.4e})", r.rtn_output_error);
  if (!r.result.input_scale.empty()) fmt::print(", alpha {:.2f}, input_scale stored", r.result.alpha);
  fmt::print("\n  {} written, {:.2f} bits/weight ({} scales{})\n", human_bytes(r.output_bytes), r.bits_per_weight,
             o.scale_dtype == qk::ScaleDType::kFloat16 ? "float16" : "float32",
             o.range_rule == qk::RangeRule::kFull ? ", full range" : "");
  return 0;
}

}  // namespace

Handler add_quantize(CLI::App& app, Output& out) {
  auto* cmd =
      app.add_subcommand("quantize",
                         "Quantize a .npy tensor into a quantized .npz (q, scale, zero_point, meta), or "
                         "apply a mixed-precision plan (--plan)");
  auto args = std::make_shared<FileQuantArgs>();
  auto plan = std::make_shared<std::string>();
  auto out_dir = std::make_shared<std::string>();
  add_file_quant_args(*cmd, *args, "Output .npz", /*checkpoints=*/true);
  cmd->add_option("--format", args->format,
                  "Element format: int (codes per the flags above), fp8-e4m3, fp8-e5m2 (scale = amax / "
                  "max finite; per channel by default) or nf4 (scale = absmax; groups of 64 by default)")
      ->capture_default_str();
  cmd->add_option("--plan", *plan, "Apply this plan (qtool mixed -o plan.json): every layer in its format");
  cmd->add_option("--out-dir", *out_dir,
                  "With --plan: folder for the quantized layers and their manifest.json");
  auto method = std::make_shared<MethodArgs>();
  cmd->add_option(
      "--method", method->method,
      "Outlier-aware method for a linear layer's weight [out, in]: rtn, importance, awq, gptq, smoothquant "
      "(default codes: 4-bit in groups of 128 when they divide the inputs, else per channel; smoothquant "
      "8-bit per channel)");
  cmd->add_option("--acts", method->acts,
                  "Calibration activations of the layer's input, .npy [..., in] (repeatable)");
  cmd->add_option("--damp", method->damp, "gptq: dampening, a fraction of the mean Hessian diagonal")
      ->capture_default_str();
  cmd->add_flag("--act-order", method->act_order,
                "gptq: quantize columns in order of decreasing Hessian diagonal");
  cmd->add_option("--alpha", method->alpha, "smoothquant: migration strength in [0, 1]")
      ->capture_default_str();
  return [args, plan, out_dir, method, &out] {
    if (args->format != "int" && (!plan->empty() || !method->method.empty()))
      throw UsageError("--format is for a plain quantize; --plan and --method make integer codes");
    if (!plan->empty()) return run_plan(*args, *plan, *out_dir, out);
    if (!method->method.empty()) return run_method(*args, *method, out);
    if (!method->acts.empty() || method->any_option())
      throw UsageError("--acts, --damp, --act-order and --alpha are for --method");
    if (!out_dir->empty()) throw UsageError("--out-dir is for --plan");
    return run_file_quant(*args, out, /*fake=*/false);
  };
}

}  // namespace qtool
