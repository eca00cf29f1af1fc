// qtool dequantize IN.npz -o OUT.npy [--dtype f16|f32|f64]
#include <fmt/format.h>

#include "common.hpp"
#include "quantkit/files/checkpoint_file.hpp"
#include "quantkit/io/dtype.hpp"

namespace qtool {

Handler add_dequantize(CLI::App& app, Output& out) {
  struct Args {
    std::string input, output, dtype = "f32";
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("dequantize", "Dequantize a quantized .npz back to a float .npy");
  cmd->add_option("input", args->input, "Quantized .npz written by qtool quantize (a tensor or a checkpoint)")
      ->required();
  cmd->add_option("-o,--output", args->output, "Output .npy (.npz for a checkpoint)")->required();
  cmd->add_option("--dtype", args->dtype, "Output dtype")->check(CLI::IsMember({"f16", "f32", "f64"}));
  return [args, &out] {
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
