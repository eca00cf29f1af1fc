// --method for qtool quantize and fake-quant: an outlier-aware method on a linear (or conv) layer's weight.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "file_quant.hpp"

namespace qtool {

struct MethodArgs {
  std::string method;
  std::vector<std::string> acts;
  std::optional<double> damp;   // gptq
  bool act_order = false;       // gptq
  std::optional<double> alpha;  // smoothquant
  bool any_option() const { return damp || act_order || alpha; }
};

void add_method_args(CLI::App& cmd, MethodArgs& m);
// fake: write the dequantized weights (the input's dtype, .npy) instead of the quantized .npz.
int run_method(const FileQuantArgs& args, const MethodArgs& m, const Output& out, bool fake);

}  // namespace qtool
