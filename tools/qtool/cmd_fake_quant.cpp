// qtool fake-quant IN.npy -o OUT.npy [spec options | --format F | --method M --acts X.npy...]: quantize then
// dequantize, in the input's float dtype, and report the error.
#include "file_quant.hpp"
#include "method_quant.hpp"

namespace qtool {

Handler add_fake_quant(CLI::App& app, Output& out) {
  auto* cmd = app.add_subcommand("fake-quant",
                                 "Quantize then dequantize a .npy tensor (same dtype out), to see the error");
  auto args = std::make_shared<FileQuantArgs>();
  add_file_quant_args(*cmd, *args, "Output .npy", /*checkpoints=*/false);
  auto method = std::make_shared<MethodArgs>();
  add_method_args(*cmd, *method);
  return [args, method, &out] {
    if (args->format != "int" && !method->method.empty())
      throw UsageError("--format is for a plain fake-quant; --method makes integer codes");
    if (!method->method.empty()) return run_method(*args, *method, out, /*fake=*/true);
    if (!method->acts.empty() || method->any_option())
      throw UsageError("--acts, --damp, --act-order and --alpha are for --method");
    return run_file_quant(*args, out, /*fake=*/true);
  };
}

}  // namespace qtool
