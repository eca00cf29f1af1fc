// ONNX models in, ONNX models out, in the QDQ form every edge runtime takes (ONNX Runtime, TensorRT, QNN,
// the Core ML and TFLite converters): QuantizeLinear/DequantizeLinear around float ops, which a runtime
// fuses into integer kernels. Three rewrites:
//   weight-only  each eligible float weight (initializer or Constant, in any subgraph) becomes int8 codes
//                plus a DequantizeLinear, per channel on the output-channel axis (opset >= 13); 4-bit
//                blocked int4 DequantizeLinear (opset 21) for MatMul weights with bits 4 and a group size.
//   static       weight-only, plus QuantizeLinear/DequantizeLinear pairs with calibrated parameters on the
//                float inputs and outputs of Conv/ConvTranspose/Gemm/MatMul (after the Relu/Clip the
//                runtime fuses into them), read from a calib.json whose tensors are ONNX value names.
//   dynamic      MatMul with a float weight -> DynamicQuantizeLinear + MatMulInteger + scale multiply, the
//                pattern ONNX Runtime runs for transformer and LSTM-style models.
// Eligible weights: inputs 1 of Conv/ConvTranspose, B of Gemm, B of MatMul, W and R of LSTM/GRU/RNN, also
// when reached through ops that only move values (Reshape, Unsqueeze, Slice, Concat, ...); rank >= 2 and at
// least `min_elements` values. Biases, norms and small tensors stay float.
// The model is read and checked before anything is written; a model that does not parse or lies about its
// sizes is refused with a message naming the file and the problem, and no output is created.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "quantkit/core/spec.hpp"
#include "quantkit/ptq/weight_spec.hpp"

namespace qk {

enum class OnnxQuantMode { kWeightOnly, kStatic, kDynamic };

struct OnnxQuantOptions {
  OnnxQuantMode mode = OnnxQuantMode::kWeightOnly;
  // Weights: int8 symmetric per channel by default. bits 4 with a group size writes blocked int4 for MatMul
  // weights (other weights stay 8-bit). Per tensor when granularity is kPerTensor. The axis is chosen per
  // weight (its output channels) and is not read from here.
  QuantSpec weight_spec = default_weight_spec(2);
  // Static: calib.json from calibrate_files over activations named by ONNX value names; the activation
  // spec (uint8/int8, affine/symmetric) is the one stored in it.
  std::string calib_path;
  std::vector<std::string> include, exclude;  // shell patterns on weight names; empty include = all
  std::string plan_path;                      // mixed plan.json: bits per weight name (layers' names)
  std::int64_t min_elements = 256;
  // How a weight's range per channel (or block) is chosen: min/max (PyTorch's weight observer), or the
  // clipped range with the least squared error (ptq/weight_clip.hpp).
  enum class WeightRange { kMinMax, kMse } weight_range = WeightRange::kMinMax;
  enum class External { kAuto, kAlways, kNever } external = External::kAuto;
};

struct OnnxWeightReport {
  std::string name;
  std::string graph;      // "main" or the subgraph's path
  std::string op;         // the op that uses it ("Conv", "MatMul", "LSTM", ...)
  std::vector<std::int64_t> shape;
  int bits = 8;
  std::string type = "int8";  // the codes' ONNX type: int8, uint8 or int4
  std::string granularity;  // "per-channel (axis 0)", "per-tensor", "blocked (32)"
  std::uint64_t bytes_before = 0, bytes_after = 0;
  double sqnr_db = 0;  // of the dequantized weight against the original
};

struct OnnxQuantReport {
  std::string input, output;
  std::int64_t opset_before = 0, opset_after = 0;
  std::vector<std::string> converted_ops;  // "Squeeze x3" when the opset was raised
  std::vector<OnnxWeightReport> weights;   // quantized
  std::vector<std::string> kept_float;     // float weights left as they are, with why
  std::vector<std::string> notes;          // weights written otherwise than asked (8-bit for 4), with why
  std::vector<std::string> activations;    // values given a QuantizeLinear/DequantizeLinear pair
  std::int64_t dynamic_matmuls = 0;
  std::int64_t int32_biases = 0;                    // Conv/Gemm biases written as int32 codes (static)
  std::uint64_t input_bytes = 0, output_bytes = 0;  // files, external data included
  bool external_data = false;
};

bool is_onnx_path(const std::string& path);

OnnxQuantReport quantize_onnx(const std::string& input, const std::string& output,
                              const OnnxQuantOptions& options);

// What `qtool inspect model.onnx` shows.
struct OnnxInitializerInfo {
  std::string name, graph, op, dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t bytes = 0;
  bool constant_node = false;
  bool would_quantize = false;  // with the default options
  std::string quantized_as;     // for a weight this model holds as codes + DequantizeLinear: "int8 per-channel (axis 0)"
  std::optional<double> sqnr_db;  // against the reference model's weight of the same name
  std::optional<double> max_abs_error;
};
struct OnnxInspectReport {
  std::string path;
  std::int64_t ir_version = 0, opset = 0;
  std::string producer;
  std::vector<std::string> inputs, outputs;  // "name float32 [1, 512]"
  std::int64_t nodes = 0, subgraphs = 0;
  std::vector<std::pair<std::string, std::int64_t>> op_counts;
  std::vector<OnnxInitializerInfo> initializers;
  std::uint64_t file_bytes = 0;
};
OnnxInspectReport inspect_onnx(const std::string& path, const std::string& reference = "");

// The weights quantize_onnx would quantize with its default options, by name with their shapes: the layers
// of `qtool mixed MODEL.onnx`, whose plan `--plan` then applies by the same names.
std::vector<std::pair<std::string, std::vector<std::int64_t>>> onnx_weight_shapes(const std::string& path);
// One float weight (initializer or Constant, any subgraph) as float32; throws naming the model and the
// weight when there is no float weight of that name.
std::vector<float> read_onnx_weight(const std::string& path, const std::string& name,
                                    std::vector<std::int64_t>* shape = nullptr);

}  // namespace qk
