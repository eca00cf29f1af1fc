// qtool quantize / fake-quant W.npy -o OUT --method rtn|importance|awq|gptq|smoothquant --acts X.npy...
#include "method_quant.hpp"

#include <fmt/format.h>

#include <cmath>
#include <optional>

#include "quantkit/files/inspect.hpp"
#include "quantkit/files/npy_header.hpp"
#include "quantkit/files/weight_method_file.hpp"
#include "quantkit/outlier/method_options.hpp"

namespace qtool {

void add_method_args(CLI::App& cmd, MethodArgs& m) {
  cmd.add_option(
      "--method", m.method,
      "Outlier-aware method for a linear layer's weight [out, in] (or a conv weight, flattened): rtn, importance, "
      "awq, gptq, smoothquant (default codes: 4-bit in groups of 128 when they divide the inputs, else per "
      "channel; smoothquant 8-bit per channel)");
  cmd.add_option("--acts", m.acts, "Calibration activations of the layer's input, .npy [..., in] (repeatable)");
  cmd.add_option("--damp", m.damp, "gptq: dampening, a fraction of the mean Hessian diagonal")->capture_default_str();
  cmd.add_flag("--act-order", m.act_order, "gptq: quantize columns in order of decreasing Hessian diagonal");
  cmd.add_option("--alpha", m.alpha, "smoothquant: migration strength in [0, 1]")->capture_default_str();
}

namespace {

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

}  // namespace

int run_method(const FileQuantArgs& args, const MethodArgs& m, const Output& out, bool fake) {
  const SpecOptions& spec = args.spec;
  if (spec.is_unsigned || spec.affine || spec.per_tensor || spec.axis || spec.qmin || spec.qmax ||
      spec.reduce_range || spec.scale || spec.zero_point || !spec.preset.empty() || !args.calib.empty())
    throw UsageError(
        "--method takes only --bits, --group-size, --scale-dtype and --range (codes are signed symmetric)");
  const std::string suffix = fake ? ".npy" : ".npz";
  if (args.input.empty() || args.output.empty())
    throw UsageError("--method needs the weight .npy and -o OUT" + suffix);
  if (!args.output.ends_with(suffix))
    throw UsageError("-o " + args.output + ": " +
                     (fake ? "fake-quant writes a float .npy" : "a quantized file is an .npz archive") +
                     "; name the output *" + suffix);
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
  // A conv weight [out, in, k...] is a layer of in * k... inputs.
  const std::int64_t in_features = shape.empty() || shape[0] == 0 ? 0 : qk::shape_numel(shape) / shape[0];
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
  const qk::MethodFileReport r =
      fake ? qk::fake_quantize_file_with_method(args.input, m.acts, args.output, request.method, o,
                                                make_progress(m.method))
           : qk::quantize_file_with_method(args.input, m.acts, args.output, request.method, o,
                                           make_progress(m.method));
  finish_progress();
  // fake-quant's purpose: the error it introduces, output against input.
  std::optional<qk::ErrorStats> error;
  if (fake) error = qk::summarize_npy(args.output, args.input).error;
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
    if (error)
      j["error"] = {{"mse", error->mse},
                    {"max_abs", error->max_abs},
                    {"sqnr_db", std::isinf(error->sqnr_db) ? nlohmann::json(nullptr) : nlohmann::json(error->sqnr_db)}};
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
  if (fake) {
    fmt::print("\n  {} written (dequantized; the quantized file would be {:.2f} bits/weight)\n",
               human_bytes(r.output_bytes), r.bits_per_weight);
    fmt::print("  error vs input: MSE {:.4e}, max abs {:.4g}, SQNR {}\n", error->mse, error->max_abs,
               std::isinf(error->sqnr_db) ? std::string("exact") : fmt::format("{:.2f} dB", error->sqnr_db));
    return 0;
  }
  fmt::print("\n  {} written, {:.2f} bits/weight ({} scales{})\n", human_bytes(r.output_bytes), r.bits_per_weight,
             o.scale_dtype == qk::ScaleDType::kFloat16 ? "float16" : "float32",
             o.range_rule == qk::RangeRule::kFull ? ", full range" : "");
  return 0;
}


}  // namespace qtool
