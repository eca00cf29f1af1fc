// qtool dequantize IN.npz -o OUT.npy [--dtype f16|f32|f64]; IN.safetensors -o OUT.safetensors [--dtype
// f16|f32|bf16]
#include <fmt/format.h>

#include "common.hpp"
#include "quantkit/files/checkpoint_file.hpp"
#include "quantkit/files/safetensors_quant.hpp"
#include "quantkit/io/dtype.hpp"

namespace qtool {

Handler add_dequantize(CLI::App& app, Output& out) {
  struct Args {
    std::string input, output, dtype = "f32";
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("dequantize", "Dequantize a quantized .npz or .safetensors back to floats");
  cmd->add_option(
         "input", args->input,
         "Quantized .npz or .safetensors written by qtool quantize (a tensor, a checkpoint or a model)")
      ->required();
  cmd->add_option("-o,--output", args->output,
                  "Output .npy (.npz for a checkpoint, .safetensors for a model)")
      ->required();
  cmd->add_option("--dtype", args->dtype, "Output dtype (f64 for .npy/.npz; bf16 for .safetensors)")
      ->check(CLI::IsMember({"f16", "f32", "f64", "bf16"}));
  return [args, &out] {
    if (args->input.ends_with(".safetensors")) {
      if (!args->output.ends_with(".safetensors"))
        throw UsageError("-o " + args->output +
                         ": a safetensors model dequantizes to a .safetensors; name the "
                         "output *.safetensors");
      if (args->dtype == "f64")
        throw UsageError("--dtype f64: a safetensors model dequantizes to f32, f16 or bf16");
      const qk::io::StDType dtype = args->dtype == "f16"    ? qk::io::StDType::kF16
                                    : args->dtype == "bf16" ? qk::io::StDType::kBF16
                                                            : qk::io::StDType::kF32;
      const qk::CheckpointReport r = qk::dequantize_safetensors(args->input, args->output, dtype);
      if (out.json) {
        print_json({{"input", args->input},
                    {"output", args->output},
                    {"kind", "safetensors"},
                    {"tensors", r.members.size()},
                    {"dtype", qk::io::st_dtype_name(dtype)},
                    {"output_bytes", r.output_bytes}});
      } else {
        fmt::print("dequantized safetensors model {} -> {}: {} tensor(s), quantized ones as {}\n",
                   args->input, args->output, r.members.size(), qk::io::st_dtype_name(dtype));
      }
      return 0;
    }
    if (args->dtype == "bf16")
      throw UsageError("--dtype bf16: numpy has no bfloat16; use it for .safetensors");
    const qk::io::DType dtype = args->dtype == "f16"   ? qk::io::DType::kFloat16
                                : args->dtype == "f64" ? qk::io::DType::kFloat64
                                                       : qk::io::DType::kFloat32;
    if (qk::is_quantized_checkpoint(args->input)) {
      if (!args->output.ends_with(".npz"))
        throw UsageError("-o " + args->output + ": a checkpoint dequantizes to an .npz; name the output *.npz");
      const qk::CheckpointReport r = qk::dequantize_checkpoint(args->input, args->output, dtype);
      if (out.json) {
        print_json({{"input", args->input}, {"output", args->output}, {"kind", "checkpoint"},
                    {"members", r.members.size()}, {"dtype", qk::io::dtype_name(dtype)},
                    {"output_bytes", r.output_bytes}});
      } else {
        fmt::print("dequantized checkpoint {} -> {}: {} member(s), quantized ones as {}\n", args->input,
                   args->output, r.members.size(), qk::io::dtype_name(dtype));
      }
      return 0;
    }
    const qk::FileQuantReport r = qk::dequantize_file(args->input, args->output, dtype);
    if (out.json) {
      print_json({{"input", args->input},
                  {"output", args->output},
                  {"shape", r.shape},
                  {"dtype", qk::io::dtype_name(dtype)},
                  {"bits", r.code_bits},
                  {"output_bytes", r.output_bytes}});
    } else {
      fmt::print("dequantized {} -> {}: shape {} {}\n", args->input, args->output, qk::shape_string(r.shape),
                 qk::io::dtype_name(dtype));
    }
    return 0;
  };
}

}  // namespace qtool
