// quantize_onnx: read and check the model, raise its opset where the QDQ form needs it, run the passes
// (onnx_rewrite.hpp), put the nodes back in order, check the result as a reader would, write it.
// Memory: the parsed model (about the file's size) plus one weight at a time as float, codes and
// dequantized copy; the output is serialized straight to its file.
#include <sys/stat.h>

#include <algorithm>

#include "onnx_opset.hpp"
#include "onnx_rewrite.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/files/plan_file.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/mixed/plan.hpp"

namespace qk {

bool is_onnx_path(const std::string& path) { return path.size() > 5 && path.ends_with(".onnx"); }

namespace {

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// The model's external data files (initializers and Constant tensors, in any graph), as paths.
std::vector<std::string> external_files(const onnx::ModelProto& model, const std::string& dir) {
  std::set<std::string> files;
  auto note = [&](const onnx::TensorProto& t) {
    if (onnxfile::is_external(t))
      for (const auto& kv : t.external_data())
        if (kv.key() == "location") files.insert(dir.empty() ? kv.value() : dir + "/" + kv.value());
  };
  onnxfile::for_each_graph(model.graph(), [&](const onnx::GraphProto& g) {
    for (const auto& t : g.initializer()) note(t);
    for (const auto& n : g.node())
      for (const auto& a : n.attribute())
        if (a.has_t()) note(a.t());
  });
  return {files.begin(), files.end()};
}

std::map<std::string, onnxfile::WeightChoice> read_onnx_plan(const std::string& path) {
  std::map<std::string, onnxfile::WeightChoice> out;
  if (path.empty()) return out;
  const Plan plan = read_plan(path);
  for (const auto& layer : plan.layers) {
    onnxfile::WeightChoice c;
    c.bits = layer.format.is_integer() ? layer.format.bits() : 0;
    c.group_size = layer.format.group_size;
    out[layer.name] = c;
  }
  return out;
}

}  // namespace

OnnxQuantReport quantize_onnx(const std::string& input, const std::string& output,
                              const OnnxQuantOptions& options) {
  io::check_output_differs(output, {input});
  if (options.mode == OnnxQuantMode::kStatic && options.calib_path.empty())
    throw Error("static activation quantization needs a calibration file");
  options.weight_spec.validate();
  OnnxQuantReport report;
  report.input = input;
  report.output = output;
  onnxfile::LoadedModel loaded = onnxfile::load_model(input);
  // Neither the model nor the data file beside it may overwrite the input or its external data.
  std::vector<std::string> inputs = external_files(loaded.model, loaded.dir);
  report.input_bytes = loaded.file_bytes;
  for (const auto& f : inputs) report.input_bytes += file_size(f);
  inputs.push_back(input);
  io::check_output_differs(output, inputs);
  io::check_output_differs(output + ".data", inputs);
  report.opset_before = onnxfile::default_opset(loaded.model);

  onnxfile::RewriteContext ctx{loaded.model,
                               loaded.dir,
                               onnxfile::NameSet(loaded.model),
                               options,
                               report,
                               read_onnx_plan(options.plan_path),
                               {},
                               false,
                               {},
                               {}};
  ctx.initializers_are_inputs = loaded.model.ir_version() < 4;
  // Per-axis DequantizeLinear is opset 13; int4 and block_size are opset 21, raised to only when a weight
  // was written blocked (the passes' nodes mean the same at 13 and 21).
  auto raise = [&](std::int64_t needed) {
    if (onnxfile::default_opset(loaded.model) >= needed) return;
    try {
      const onnxfile::OpsetUpgrade up =
          onnxfile::upgrade_opset(loaded.model, needed, [&](const std::string& b) { return ctx.names.fresh(b); });
      report.converted_ops.insert(report.converted_ops.end(), up.converted.begin(), up.converted.end());
    } catch (const Error& e) {
      throw Error(input + ": " + e.what());
    }
  };
  raise(13);
  try {
    if (options.mode == OnnxQuantMode::kDynamic) onnxfile::quantize_dynamic_matmuls(ctx);
    if (options.mode == OnnxQuantMode::kStatic) onnxfile::plan_activations(ctx);
    onnxfile::quantize_weights(ctx);
    if (options.mode == OnnxQuantMode::kStatic) onnxfile::insert_activation_qdq(ctx);
    onnxfile::sort_topologically(*loaded.model.mutable_graph());
  } catch (const Error& e) {
    throw Error(input + ": " + e.what());
  }
  const bool blocked = std::any_of(report.weights.begin(), report.weights.end(),
                                   [](const OnnxWeightReport& w) { return w.bits == 4; });
  if (blocked) raise(21);
  report.opset_after = onnxfile::default_opset(loaded.model);
  if (!loaded.model.has_producer_name() || loaded.model.producer_name().empty())
    loaded.model.set_producer_name("quantkit");
  // What a reader checks, checked before anything is written (a defect here must not reach a file).
  onnxfile::validate_model(loaded.model, loaded.dir, output + " (as written)");

  onnxfile::SaveOptions save;
  save.external = options.external == OnnxQuantOptions::External::kAlways  ? onnxfile::ExternalData::kAlways
                  : options.external == OnnxQuantOptions::External::kNever ? onnxfile::ExternalData::kNever
                                                                           : onnxfile::ExternalData::kAuto;
  report.output_bytes = onnxfile::save_model(loaded.model, output, loaded.dir, save);
  report.external_data = report.output_bytes > file_size(output);  // the rest went to OUT.onnx.data
  return report;
}

}  // namespace qk
