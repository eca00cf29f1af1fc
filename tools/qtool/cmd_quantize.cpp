// qtool quantize IN.npy -o OUT.npz [spec options]
#include "file_quant.hpp"

namespace qtool {

Handler add_quantize(CLI::App& app, Output& out) {
  auto* cmd = app.add_subcommand("quantize",
                                 "Quantize a .npy tensor into a quantized .npz (q, scale, zero_point, meta)");
  auto args = std::make_shared<FileQuantArgs>();
  add_file_quant_args(*cmd, *args, "Output .npz");
  return [args, &out] { return run_file_quant(*args, out, /*fake=*/false); };
}

}  // namespace qtool
