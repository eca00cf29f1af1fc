// qtool quantize MODEL.onnx -o OUT.onnx [--calib calib.json | --dynamic] [--bits 4 --group-size G]
//                [--include/--exclude GLOB] [--plan plan.json] [--external-data auto|always|never]
// qtool inspect MODEL.onnx [--reference ORIGINAL.onnx] [--json]
#include "onnx_quant.hpp"

#include <fmt/format.h>

#include <cmath>

#include "quantkit/core/tensor_view.hpp"
#include "quantkit/files/calibration_file.hpp"
#include "quantkit/files/onnx_quant.hpp"

namespace qtool {

namespace {

nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

void add_onnx_args(CLI::App& cmd, OnnxArgs& args) {
  cmd.add_flag(
      "--dynamic", args.dynamic,
      "ONNX model: MatMul weights as DynamicQuantizeLinear + MatMulInteger (activations quantized at "
      "run time); other weights get DequantizeLinear");
  cmd.add_option(
         "--external-data", args.external,
         "ONNX output: keep tensors in OUT.onnx.data (always), inline (never), or only when the model "
         "exceeds protobuf's 2 GB (auto)")
      ->check(CLI::IsMember({"auto", "always", "never"}));
  cmd.add_option("--min-elements", args.min_elements,
                 "ONNX model: weights with fewer values stay float (default 256)")
      ->check(CLI::PositiveNumber);
  cmd.add_option(
         "--weight-range", args.weight_range,
         "ONNX model: each weight channel's range: minmax (default, PyTorch's weight observer) or mse "
         "(the clipped range with the least squared error)")
      ->check(CLI::IsMember({"minmax", "mse"}));
}

int run_onnx_quant(const FileQuantArgs& args, const OnnxArgs& onnx, const std::string& plan,
                   const Output& out) {
  if (args.output.empty()) throw UsageError("an ONNX model needs -o OUT.onnx");
  if (!qk::is_onnx_path(args.output)) throw UsageError("an ONNX model is written as -o OUT.onnx");
  if (args.format != "int") throw UsageError("--format is for .npy inputs; ONNX weights are integer codes");
  if (args.spec.axis) throw UsageError("--axis: an ONNX weight's axis is its output channels, chosen per op");
  if (args.spec.scale || args.spec.zero_point)
    throw UsageError("--scale and --zero-point are for one tensor");
  if (!args.tensor.empty()) throw UsageError("--tensor is for one .npy; --calib covers the model's values");
  if (onnx.dynamic && !args.calib.empty()) throw UsageError("--dynamic and --calib: choose one");
  // ONNX stores int8/uint8 codes, and int4 in blocks along a MatMul weight's rows (opset 21).
  const bool blocked = args.spec.bits == 4 && args.spec.group_size.has_value();
  if (args.spec.group_size && args.spec.bits != 4)
    throw UsageError("--group-size is for --bits 4: blocked int4 MatMul weights");
  if (args.spec.bits != 8 && !blocked)
    throw UsageError(
        "an ONNX model takes --bits 8, or --bits 4 with --group-size G (blocked int4 MatMul weights)");
  if (onnx.dynamic && (!plan.empty() || blocked))
    throw UsageError(
        "--dynamic quantizes MatMul weights to int8 per column: no --plan, --bits 4 or --group-size");
  if (!plan.empty() && (args.spec.any_spec_flag() || !args.include.empty() || !args.exclude.empty()))
    throw UsageError("--plan gives every weight its format: no spec flags, --include or --exclude");
  qk::OnnxQuantOptions o;
  o.mode = onnx.dynamic ? qk::OnnxQuantMode::kDynamic
                        : (args.calib.empty() ? qk::OnnxQuantMode::kWeightOnly : qk::OnnxQuantMode::kStatic);
  // A calibration made with a preset brings the preset's weights too (hexagon: uint8 affine), unless the
  // command line says otherwise.
  SpecOptions spec = args.spec;
  if (!args.calib.empty() && spec.preset.empty() && !spec.any_integer_flag()) {
    qk::CalibrationFileInfo info;
    qk::read_calibration(args.calib, &info);
    spec.preset = info.preset;
  }
  o.weight_spec = spec.to_options(2).spec;
  if (!args.spec.per_tensor && !args.spec.group_size)
    o.weight_spec.granularity = qk::Granularity::kPerChannel;
  o.calib_path = args.calib;
  o.include = args.include;
  o.exclude = args.exclude;
  o.plan_path = plan;
  o.min_elements = onnx.min_elements;
  o.weight_range = onnx.weight_range == "mse" ? qk::OnnxQuantOptions::WeightRange::kMse
                                              : qk::OnnxQuantOptions::WeightRange::kMinMax;
  o.external = onnx.external == "always"  ? qk::OnnxQuantOptions::External::kAlways
               : onnx.external == "never" ? qk::OnnxQuantOptions::External::kNever
                                          : qk::OnnxQuantOptions::External::kAuto;
  const qk::OnnxQuantReport r = qk::quantize_onnx(args.input, args.output, o);
  if (out.json) {
    nlohmann::json weights = nlohmann::json::array();
    for (const auto& w : r.weights)
      weights.push_back({{"name", w.name},
                         {"graph", w.graph},
                         {"op", w.op},
                         {"shape", w.shape},
                         {"bits", w.bits},
                         {"type", w.type},
                         {"granularity", w.granularity},
                         {"bytes_before", w.bytes_before},
                         {"bytes_after", w.bytes_after},
                         {"sqnr_db", finite_or_null(w.sqnr_db)}});
    print_json({{"input", r.input},
                {"output", r.output},
                {"mode", onnx.dynamic ? "dynamic" : (args.calib.empty() ? "weight-only" : "static")},
                {"opset_before", r.opset_before},
                {"opset_after", r.opset_after},
                {"converted_ops", r.converted_ops},
                {"weights", weights},
                {"kept_float", r.kept_float},
                {"notes", r.notes},
                {"activations", r.activations},
                {"dynamic_matmuls", r.dynamic_matmuls},
                {"int32_biases", r.int32_biases},
                {"input_bytes", r.input_bytes},
                {"output_bytes", r.output_bytes},
                {"external_data", r.external_data}});
    return 0;
  }
  fmt::print("{} -> {} (opset {}{})\n", r.input, r.output, r.opset_after,
             r.opset_before == r.opset_after ? "" : fmt::format(", raised from {}", r.opset_before));
  for (const auto& c : r.converted_ops) fmt::print("  converted {}\n", c);
  for (const auto& w : r.weights)
    fmt::print("  {:<48} {:<16} {:<14} {:<5} {:<24} SQNR {:.1f} dB\n", w.name, w.op,
               qk::shape_string(w.shape), w.type, w.granularity, w.sqnr_db);
  if (!r.activations.empty())
    fmt::print("  {} activations with QuantizeLinear/DequantizeLinear\n", r.activations.size());
  if (r.int32_biases) fmt::print("  {} biases as int32 codes\n", r.int32_biases);
  if (r.dynamic_matmuls) fmt::print("  {} MatMul -> MatMulInteger (dynamic)\n", r.dynamic_matmuls);
  for (const auto& k : r.kept_float) fmt::print("  float: {}\n", k);
  for (const auto& k : r.notes) fmt::print("  note: {}\n", k);
  fmt::print("  {} -> {}{}: {}\n", human_bytes(r.input_bytes), human_bytes(r.output_bytes),
             r.external_data ? " (with external data)" : "",
             size_change(static_cast<double>(r.input_bytes) /
                         static_cast<double>(std::max<std::uint64_t>(r.output_bytes, 1))));
  return 0;
}

int inspect_onnx_model(const std::string& path, const std::string& reference, const Output& out) {
  const qk::OnnxInspectReport r = qk::inspect_onnx(path, reference);
  if (out.json) {
    nlohmann::json inits = nlohmann::json::array();
    for (const auto& i : r.initializers) {
      nlohmann::json j{{"name", i.name},
                       {"graph", i.graph},
                       {"op", i.op},
                       {"dtype", i.dtype},
                       {"shape", i.shape},
                       {"bytes", i.bytes},
                       {"constant_node", i.constant_node},
                       {"would_quantize", i.would_quantize}};
      if (!i.quantized_as.empty()) j["quantized_as"] = i.quantized_as;
      if (i.sqnr_db) j["sqnr_db"] = finite_or_null(*i.sqnr_db);
      if (i.max_abs_error) j["max_abs_error"] = *i.max_abs_error;
      inits.push_back(j);
    }
    nlohmann::json ops = nlohmann::json::object();
    for (const auto& [op, n] : r.op_counts) ops[op] = n;
    nlohmann::json j{{"file", path},         {"kind", "onnx"},         {"ir_version", r.ir_version},
                     {"opset", r.opset},     {"producer", r.producer}, {"inputs", r.inputs},
                     {"outputs", r.outputs}, {"nodes", r.nodes},       {"subgraphs", r.subgraphs},
                     {"ops", ops},           {"initializers", inits},  {"bytes", r.file_bytes}};
    if (!reference.empty()) j["reference"] = reference;
    print_json(j);
    return 0;
  }
  fmt::print("{}: ONNX model, IR {}, opset {}, {} nodes ({} subgraphs), {}{}\n", path, r.ir_version, r.opset,
             r.nodes, r.subgraphs, human_bytes(r.file_bytes),
             r.producer.empty() ? "" : ", from " + r.producer);
  for (const auto& i : r.inputs) fmt::print("  input  {}\n", i);
  for (const auto& o : r.outputs) fmt::print("  output {}\n", o);
  std::string ops;
  for (const auto& [op, n] : r.op_counts) ops += fmt::format("{}{} {}", ops.empty() ? "" : ", ", op, n);
  fmt::print("  ops: {}\n", ops);
  std::uint64_t total = 0, quantizable = 0;
  for (const auto& i : r.initializers) {
    total += i.bytes;
    if (i.bytes < 1024 && i.quantized_as.empty() && !i.would_quantize)
      continue;  // shape constants and the like
    std::string note =
        !i.quantized_as.empty() ? i.quantized_as : (i.would_quantize ? "would quantize" : "stays");
    if (i.sqnr_db)
      note += fmt::format(", SQNR {:.1f} dB, max |err| {:.3g}", *i.sqnr_db, i.max_abs_error.value_or(0));
    if (i.would_quantize) quantizable += i.bytes;
    fmt::print("  {:<52} {:<10} {:<8} {:<14} {:>10}  {}\n", i.name, i.op.empty() ? "-" : i.op, i.dtype,
               qk::shape_string(i.shape), human_bytes(i.bytes), note);
  }
  fmt::print("  {} of tensors, {} in weights quantize_onnx would quantize (smaller tensors not listed)\n",
             human_bytes(total), human_bytes(quantizable));
  return 0;
}

}  // namespace qtool
