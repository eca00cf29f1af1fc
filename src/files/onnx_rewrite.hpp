// The rewrites quantize_onnx runs on a loaded model (private to src/files): each reads and extends one
// RewriteContext, so that a later step knows what an earlier one did (a static Conv's int32 bias needs its
// weight's scales and its input's scale).
#pragma once

#include <map>
#include <set>
#include <string>

#include "../io/onnx_model.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/files/onnx_quant.hpp"
#include "quantkit/ptq/weight_clip.hpp"

namespace qk::onnxfile {

struct WeightChoice {
  int bits = 8;                 // 0: keep float (a plan's fp16/fp32)
  std::int64_t group_size = 0;  // > 0: blocked along the reduction axis (int4 MatMul weights)
};

struct RewriteContext {
  onnx::ModelProto& model;
  std::string dir;  // the input's folder (external data)
  NameSet names;
  const OnnxQuantOptions& options;
  OnnxQuantReport& report;
  std::map<std::string, WeightChoice> plan;  // by weight name, from options.plan_path
  std::set<std::string> created;  // float tensors a pass added (scales): never weights themselves
  // IR < 4 lists every initializer among the graph inputs too: they are not overridable inputs then, and
  // a quantized weight's entry is dropped; from IR 4 a weight that is also an input is left float.
  bool initializers_are_inputs = false;
  // Filled by the weight pass: original weight name -> its per-channel parameters (axis in spec.axis).
  std::map<std::string, QuantParams> weight_params;
  // Filled by the activation pass: value name -> its (scale, zero point, storage type).
  struct ActParams {
    float scale = 1;
    std::int32_t zero_point = 0;
    std::int32_t type = kUint8;
  };
  std::map<std::string, ActParams> activation_params;
};

// Whether a weight read by `op` at input `index` is one quantize_onnx quantizes, and on which axis its
// output channels lie (rank = the weight's rank).
bool is_weight_input(const onnx::NodeProto& node, int index);
int output_channel_axis(const onnx::NodeProto& node, int index, int rank);

// The passes, in the order quantize_onnx runs them.
void quantize_dynamic_matmuls(RewriteContext& ctx);  // --dynamic: MatMul -> MatMulInteger
void plan_activations(RewriteContext& ctx);          // static: which values get Q/DQ, their parameters
void quantize_weights(RewriteContext& ctx);          // every eligible weight -> codes + DequantizeLinear
void insert_activation_qdq(RewriteContext& ctx);     // static: the Q/DQ pairs and int32 biases

// Helpers the passes share.
// A weight's codes by quantkit's rules (the same as `quantize_file` on it as .npy), in `Q` (int8 or
// uint8), with their parameters and the dequantized values the report's error is measured on.
struct QuantizedWeight {
  QuantParams params;
  std::vector<float> dequantized;
};
template <class Q>
QuantizedWeight quantize_weight(const std::vector<float>& x, const Shape& shape, const QuantSpec& spec,
                                OnnxQuantOptions::WeightRange range, std::vector<Q>& codes) {
  QuantizedWeight out;
  const TensorView<const float> view(x.data(), shape);
  out.params = range == OnnxQuantOptions::WeightRange::kMse ? mse_clipped_params(view, spec)
                                                            : choose_qparams<float>(view, spec);
  codes.resize(x.size());
  quantize<float, Q>(view, out.params, std::span<Q>(codes));
  out.dequantized.resize(x.size());
  dequantize<Q, float>(TensorView<const Q>(codes.data(), shape), out.params,
                       std::span<float>(out.dequantized));
  return out;
}

// Whether the options' include/exclude patterns select the weight.
bool is_selected(const OnnxQuantOptions& options, const std::string& name);

onnx::NodeProto make_node(const std::string& op, std::vector<std::string> inputs,
                          std::vector<std::string> outputs, const std::string& name);
void set_int_attribute(onnx::NodeProto& node, const std::string& name, std::int64_t value);
// Replaces every read of `from` by `to` in `graph` and the subgraphs that see it from outer scope.
void rename_reads(onnx::GraphProto& graph, const std::string& from, const std::string& to);
void drop_graph_input(onnx::GraphProto& graph, const std::string& name);
bool is_graph_input(const onnx::GraphProto& graph, const std::string& name);

}  // namespace qk::onnxfile
