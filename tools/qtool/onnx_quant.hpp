// qtool's ONNX flows: quantize MODEL.onnx (weight-only, --calib static QDQ, --dynamic) and inspect
// MODEL.onnx; the rewriting lives in the library (files/onnx_quant.hpp).
#pragma once

#include <string>

#include "common.hpp"
#include "file_quant.hpp"

namespace qtool {

struct OnnxArgs {
  bool dynamic = false;
  std::string external = "auto";  // --external-data auto|always|never
  std::int64_t min_elements = 256;
  std::string weight_range = "minmax";  // --weight-range minmax|mse
  bool any() const {
    return dynamic || external != "auto" || min_elements != 256 || weight_range != "minmax";
  }
};

void add_onnx_args(CLI::App& cmd, OnnxArgs& args);
// plan: a mixed-precision plan whose layer names are the model's weight names.
int run_onnx_quant(const FileQuantArgs& args, const OnnxArgs& onnx, const std::string& plan,
                   const Output& out);
int inspect_onnx_model(const std::string& path, const std::string& reference, const Output& out);

}  // namespace qtool
