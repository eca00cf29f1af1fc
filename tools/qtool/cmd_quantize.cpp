// qtool quantize IN.npy -o OUT.npz [spec options] [--format int|fp8-e4m3|fp8-e5m2|nf4]
// qtool quantize IN.gguf|IN.safetensors -o OUT.gguf --type T [--tensor-type GLOB=T]... [--meta K=V]...
// qtool quantize MODEL.onnx -o OUT.onnx [--calib calib.json | --dynamic] [--bits 4 --group-size G] [--plan P]
//                (onnx_quant.cpp)
// qtool quantize --plan plan.json --out-dir DIR   (a mixed-precision plan from qtool mixed)
// qtool quantize W.npy -o OUT.npz --method rtn|importance|awq|gptq|smoothquant --acts X.npy... [--bits B]
//                [--group-size G] [--damp D] [--act-order] [--alpha A]
#include <fmt/format.h>

#include <optional>

#include "file_quant.hpp"
#include "gguf_quant.hpp"
#include "method_quant.hpp"
#include "onnx_quant.hpp"
#include "quantkit/files/npy_header.hpp"
#include "quantkit/files/onnx_quant.hpp"
#include "quantkit/files/plan_file.hpp"
#include "quantkit/files/safetensors_quant.hpp"

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
  cmd->add_option("--plan", *plan, "Apply this plan (qtool mixed -o plan.json): every layer in its format");
  cmd->add_option("--out-dir", *out_dir,
                  "With --plan: folder for the quantized layers and their manifest.json");
  auto method = std::make_shared<MethodArgs>();
  add_method_args(*cmd, *method);
  auto gguf = std::make_shared<GgufArgs>();
  add_gguf_args(*cmd, *gguf);
  auto onnx = std::make_shared<OnnxArgs>();
  add_onnx_args(*cmd, *onnx);
  return [args, plan, out_dir, method, gguf, onnx, &out] {
    if (qk::is_onnx_path(args->input)) {
      if (!method->method.empty() || method->any_option() || !method->acts.empty() || gguf->any() ||
          !out_dir->empty())
        throw UsageError(
            "an ONNX model takes the spec options, --calib, --dynamic, --include/--exclude, --plan "
            "and --external-data");
      return run_onnx_quant(*args, *onnx, *plan, out);
    }
    if (onnx->any())
      throw UsageError("--dynamic, --external-data, --min-elements and --weight-range are for an ONNX model");
    if (args->output.ends_with(".gguf")) {
      if (!plan->empty() || !method->method.empty())
        throw UsageError("a .gguf output takes --type and --tensor-type; --plan and --method write .npz");
      return run_gguf_quant(*args, *gguf, out);
    }
    if (gguf->any())
      throw UsageError(
          "--type, --tensor-type, --meta, --target-bpw, --target-bytes, --candidate-types and --importance "
          "are for a .gguf output (-o OUT.gguf)");
    if (args->format != "int" && (!plan->empty() || !method->method.empty()))
      throw UsageError("--format is for a plain quantize; --plan and --method make integer codes");
    if (!plan->empty() && qk::is_safetensors_path(args->input)) {
      // A plan over a safetensors model's tensors (qtool mixed MODEL.safetensors -o plan.json), applied to
      // the model: one quantized .safetensors.
      if (!out_dir->empty())
        throw UsageError("--plan with a safetensors model writes -o OUT.safetensors, not --out-dir");
      if (!method->method.empty()) throw UsageError("--plan and --method: choose one");
      return run_file_quant(*args, out, /*fake=*/false, *plan);
    }
    if (!plan->empty()) return run_plan(*args, *plan, *out_dir, out);
    if (!method->method.empty()) return run_method(*args, *method, out, /*fake=*/false);
    if (!method->acts.empty() || method->any_option())
      throw UsageError("--acts, --damp, --act-order and --alpha are for --method");
    if (!out_dir->empty()) throw UsageError("--out-dir is for --plan");
    return run_file_quant(*args, out, /*fake=*/false);
  };
}

}  // namespace qtool
