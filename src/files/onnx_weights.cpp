// The weight pass of quantize_onnx: each eligible float weight becomes integer codes plus a
// DequantizeLinear that yields the original name, so every reader of the weight is left as it was.
// The codes are computed by quantkit's own rules (core/quantize.hpp) on the same spec as `qtool quantize
// W.npy`, so a weight's scales here equal the .npy path's for the same tensor and axis.
#include <fnmatch.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "onnx_rewrite.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qk::onnxfile {

namespace {

bool default_domain(const onnx::NodeProto& node) {
  return node.domain().empty() || node.domain() == "ai.onnx";
}

// Whether the weight's name is also defined somewhere else in the model (an outer or inner scope).
bool defined_elsewhere(const onnx::ModelProto& model, const Weight& w) {
  int count = 0;
  for_each_graph(model.graph(), [&](const onnx::GraphProto& g) {
    for (const auto& i : g.input()) count += i.name() == w.name && &g != w.graph;
    for (const auto& t : g.initializer()) count += t.name() == w.name;
    for (const auto& n : g.node())
      for (const auto& o : n.output()) count += o == w.name;
  });
  return count > 1;
}

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// Turns the weight's tensor (or Constant node) into the codes initializer `codes` and adds
// DequantizeLinear(codes, scale, zero_point) -> weight name to its graph. Reads nothing from the weight:
// the caller has its values already.
void replace_weight(RewriteContext& ctx, const Weight& w, onnx::TensorProto codes, onnx::TensorProto scale,
                    std::optional<onnx::TensorProto> zero_point, std::optional<int> axis,
                    std::int64_t block_size) {
  onnx::GraphProto& g = *w.graph;
  std::vector<std::string> inputs = {codes.name(), scale.name()};
  if (zero_point) inputs.push_back(zero_point->name());
  // A node output must be a new name in every scope (SSA): a subgraph initializer that shadows an outer
  // name gets its DequantizeLinear under a fresh name, and the subgraph's reads follow it.
  std::string result = w.name;
  if (defined_elsewhere(ctx.model, w)) {
    result = ctx.names.fresh(w.name + "_dequantized");
    rename_reads(g, w.name, result);
  }
  onnx::NodeProto dq =
      make_node("DequantizeLinear", inputs, {result}, ctx.names.fresh(w.name + "_DequantizeLinear"));
  if (axis) set_int_attribute(dq, "axis", *axis);
  if (block_size > 0) set_int_attribute(dq, "block_size", block_size);
  if (w.constant_node >= 0) {
    *g.add_initializer() = std::move(codes);
    *g.mutable_node(w.constant_node) = std::move(dq);
  } else {
    // The weight's own TensorProto becomes the codes: nothing else in the graph moves.
    *w.tensor = std::move(codes);
    *g.add_node() = std::move(dq);
    drop_graph_input(g, w.name);
  }
  *g.add_initializer() = std::move(scale);
  if (zero_point) *g.add_initializer() = std::move(*zero_point);
}

}  // namespace

bool is_weight_input(const onnx::NodeProto& node, int index) {
  if (!default_domain(node)) return false;
  const std::string& op = node.op_type();
  if (op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul") return index == 1;
  if (op == "LSTM" || op == "GRU" || op == "RNN") return index == 1 || index == 2;
  return false;
}

int output_channel_axis(const onnx::NodeProto& node, int index, int rank) {
  const std::string& op = node.op_type();
  if (op == "ConvTranspose") return 1;                                // [C_in, C_out / group, k...]
  if (op == "Gemm") return int_attribute(node, "transB", 0) ? 0 : 1;  // B is [K, N], or [N, K] transposed
  if (op == "MatMul") return rank - 1;                                // [..., K, N]
  if (op == "LSTM" || op == "GRU" || op == "RNN") return 1;           // [directions, gates * hidden, input]
  (void)index;
  return 0;  // Conv: [C_out, C_in / group, k...]
}

onnx::NodeProto make_node(const std::string& op, std::vector<std::string> inputs,
                          std::vector<std::string> outputs, const std::string& name) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  for (auto& i : inputs) n.add_input(std::move(i));
  for (auto& o : outputs) n.add_output(std::move(o));
  return n;
}

void set_int_attribute(onnx::NodeProto& node, const std::string& name, std::int64_t value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void drop_graph_input(onnx::GraphProto& g, const std::string& name) {
  auto* in = g.mutable_input();
  for (int i = 0; i < in->size(); ++i)
    if (in->Get(i).name() == name) {
      in->DeleteSubrange(i, 1);
      return;
    }
}

bool is_graph_input(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& i : g.input())
    if (i.name() == name) return true;
  return false;
}

bool is_selected(const OnnxQuantOptions& options, const std::string& name) {
  auto any = [&](const std::vector<std::string>& patterns) {
    for (const auto& p : patterns)
      if (::fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
    return false;
  };
  return (options.include.empty() || any(options.include)) && !any(options.exclude);
}

void quantize_weights(RewriteContext& ctx) {
  const OnnxQuantOptions& opt = ctx.options;
  for (const Weight& w : float_weights(ctx.model)) {
    if (ctx.created.count(w.name)) continue;
    const Shape shape = dims(*w.tensor);
    const std::int64_t n = numel(*w.tensor);
    auto keep = [&](const std::string& why) { ctx.report.kept_float.push_back(w.name + ": " + why); };
    const WeightUse use = weight_use(*w.graph, w.name);
    if (use.compute.empty()) {
      if (uses_of(*w.graph, w.name).empty()) continue;  // a graph output or an unused constant
      keep("only moved, never computed with");
      continue;
    }
    std::string other;
    for (const Use& u : use.compute)
      if (!is_weight_input(*u.node, u.input)) other = u.node->op_type();
    if (!other.empty()) {
      // Biases, norm parameters, shape constants: only report the sizeable ones.
      if (n >= opt.min_elements) keep("read by " + other);
      continue;
    }
    if (shape.size() < 2) continue;
    if (w.tensor->data_type() != kFloat) {
      // DequantizeLinear gives float32 before opset 19 (and the scale's type after): a float16 model's
      // ops would get a float32 operand.
      keep(type_name(w.tensor->data_type()) + " weight: only float32 weights are quantized");
      continue;
    }
    if (!ctx.initializers_are_inputs && w.constant_node < 0 && is_graph_input(*w.graph, w.name)) {
      keep("also a graph input (a default the caller may override)");
      continue;
    }
    if (n < opt.min_elements) {
      keep("small (" + std::to_string(n) + " values)");
      continue;
    }
    if (!is_selected(opt, w.name)) {
      keep("left out by include/exclude");
      continue;
    }
    WeightChoice choice{opt.weight_spec.bits, opt.weight_spec.granularity == Granularity::kPerGroup
                                                  ? opt.weight_spec.group_size
                                                  : 0};
    if (!ctx.plan.empty()) {
      const auto it = ctx.plan.find(w.name);
      if (it == ctx.plan.end()) {
        keep("not in the plan");
        continue;
      }
      choice = it->second;
      if (choice.bits == 0) {
        keep("float in the plan");
        continue;
      }
    }
    const auto& first = *use.compute.front().node;
    int axis = output_channel_axis(first, use.compute.front().input, static_cast<int>(shape.size()));
    bool all_matmul = true;
    for (const Use& u : use.compute) {
      if (output_channel_axis(*u.node, u.input, static_cast<int>(shape.size())) != axis) axis = 0;
      all_matmul = all_matmul && u.node->op_type() == "MatMul";
    }
    // Through a layout op the consumer's axes are not the tensor's: take axis 0, the output channels in
    // PyTorch's layout (any axis gives exact dequantization; this one gives the best scales for exports).
    if (!use.direct) axis = 0;
    std::vector<float> x = read_floats(*w.tensor, ctx.dir);
    OnnxWeightReport rep;
    rep.name = w.name;
    rep.graph = w.graph_path;
    rep.op = first.op_type();
    rep.shape = shape;
    rep.bytes_before = raw_bytes(w.tensor->data_type(), n);
    const bool blocked = choice.bits == 4 && choice.group_size > 0 && all_matmul && use.direct &&
                         shape.size() == 2 && shape[0] % choice.group_size == 0;
    if (choice.bits < 8 && !blocked) {
      // ONNX has no int2..int7 and int4 per channel only at opset 21: keep such weights at 8 bits.
      ctx.report.notes.push_back(
          w.name + ": 8-bit, not " + std::to_string(choice.bits) +
          "-bit: blocked int4 is for 2-D MatMul weights whose rows divide by the group");
      choice = {8, 0};
    }
    if (blocked) {
      // Blocks run along K (axis 0 of B [K, N]), the reduction axis, as DequantizeLinear-21's block_size
      // and ONNX Runtime's MatMulNBits expect. quantkit groups consecutive elements of the last axis, so
      // quantize B^T [N, K] and transpose codes and scales back. Memory: B^T, its codes and its
      // dequantized copy (the float input is released once transposed).
      const std::int64_t K = shape[0], N = shape[1], G = choice.group_size, blocks = K / G;
      std::vector<float> xt(x.size());
      for (std::int64_t k = 0; k < K; ++k)
        for (std::int64_t j = 0; j < N; ++j) xt[j * K + k] = x[k * N + j];
      std::vector<float>().swap(x);
      QuantSpec spec = opt.weight_spec;
      spec.bits = 4;
      spec.is_signed = true;
      spec.scheme = Scheme::kSymmetric;
      spec.granularity = Granularity::kPerGroup;
      spec.group_size = G;
      std::vector<std::int8_t> qt;
      const QuantizedWeight qz = quantize_weight<std::int8_t>(xt, {N, K}, spec, opt.weight_range, qt);
      rep.sqnr_db = compare(xt, qz.dequantized).sqnr_db;
      std::string packed((static_cast<std::size_t>(K * N) + 1) / 2, '\0');
      for (std::int64_t k = 0; k < K; ++k)
        for (std::int64_t j = 0; j < N; ++j) {
          const std::int64_t flat = k * N + j;
          const auto nib = static_cast<std::uint8_t>(qt[static_cast<std::size_t>(j * K + k)] & 0x0f);
          packed[static_cast<std::size_t>(flat / 2)] |= static_cast<char>(flat % 2 ? nib << 4 : nib);
        }
      std::vector<float> scales(static_cast<std::size_t>(blocks * N));
      for (std::int64_t b = 0; b < blocks; ++b)
        for (std::int64_t j = 0; j < N; ++j) scales[b * N + j] = qz.params.scale[j * blocks + b];
      rep.bits = 4;
      rep.type = "int4";
      rep.granularity = "blocked (" + std::to_string(G) + " along axis 0)";
      onnx::TensorProto codes = make_tensor(ctx.names.fresh(w.name + "_quantized"), kInt4, shape, packed);
      onnx::TensorProto scale =
          make_tensor(ctx.names.fresh(w.name + "_scale"), kFloat, {blocks, N}, bytes_of(scales));
      rep.bytes_after = packed.size() + scales.size() * 4;
      replace_weight(ctx, w, std::move(codes), std::move(scale), std::nullopt, 0, G);
      ctx.report.weights.push_back(std::move(rep));
      continue;
    }
    QuantSpec spec = opt.weight_spec;
    spec.bits = choice.bits;
    spec.group_size = 0;
    if (spec.granularity == Granularity::kPerGroup) spec.granularity = Granularity::kPerChannel;
    spec.axis = axis;
    const bool per_channel = spec.granularity == Granularity::kPerChannel;
    QuantizedWeight qz;
    std::string code_bytes;
    if (spec.is_signed) {
      std::vector<std::int8_t> q;
      qz = quantize_weight<std::int8_t>(x, shape, spec, opt.weight_range, q);
      code_bytes = bytes_of(q);
    } else {
      std::vector<std::uint8_t> q;
      qz = quantize_weight<std::uint8_t>(x, shape, spec, opt.weight_range, q);
      code_bytes = bytes_of(q);
    }
    const std::int32_t code_type = spec.is_signed ? kInt8 : kUint8;
    const std::vector<std::int64_t> slot_shape =
        per_channel ? std::vector<std::int64_t>{shape[static_cast<std::size_t>(axis)]}
                    : std::vector<std::int64_t>{};
    std::string zp_bytes;
    for (std::int32_t z : qz.params.zero_point) zp_bytes.push_back(static_cast<char>(z));
    rep.bits = choice.bits;
    rep.type = spec.is_signed ? "int8" : "uint8";
    rep.granularity = per_channel ? "per-channel (axis " + std::to_string(axis) + ")" : "per-tensor";
    rep.sqnr_db = compare(x, qz.dequantized).sqnr_db;
    rep.bytes_after = code_bytes.size() + qz.params.scale.size() * 5;
    onnx::TensorProto codes =
        make_tensor(ctx.names.fresh(w.name + "_quantized"), code_type, shape, code_bytes);
    onnx::TensorProto scale =
        make_tensor(ctx.names.fresh(w.name + "_scale"), kFloat, slot_shape, bytes_of(qz.params.scale));
    onnx::TensorProto zero =
        make_tensor(ctx.names.fresh(w.name + "_zero_point"), code_type, slot_shape, zp_bytes);
    ctx.weight_params[w.name] = qz.params;
    replace_weight(ctx, w, std::move(codes), std::move(scale), std::move(zero),
                   per_channel ? std::optional<int>(axis) : std::nullopt, 0);
    ctx.report.weights.push_back(std::move(rep));
  }
}

}  // namespace qk::onnxfile
