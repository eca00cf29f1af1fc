// qtool fake-quant IN.npy -o OUT.npy [spec options]: quantize then dequantize, in the input's float dtype.
#include "file_quant.hpp"

namespace qtool {

Handler add_fake_quant(CLI::App& app, Output& out) {
  auto* cmd = app.add_subcommand("fake-quant",
                                 "Quantize then dequantize a .npy tensor (same dtype out), to see the error");
  auto args = std::make_shared<FileQuantArgs>();
  add_file_quant_args(*cmd, *args, "Output .npy", /*checkpoints=*/false);
  return [args, &out] { return run_file_quant(*args, out, /*fake=*/true); };
}

}  // namespace qtool
