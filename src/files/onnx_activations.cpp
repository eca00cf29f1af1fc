// Static activation quantization for quantize_onnx: QuantizeLinear/DequantizeLinear pairs with calibrated
// parameters where ONNX Runtime (and the QDQ-consuming edge compilers) fuse them into integer kernels.
// A Conv/ConvTranspose/Gemm/MatMul becomes an integer kernel when every float input it computes with comes
// out of a DequantizeLinear and its output (after a Relu or Clip it absorbs) goes into a QuantizeLinear:
// so the pairs go on those ops' activation inputs and on their (fused) outputs, not on every value, and
// a Conv or Gemm bias becomes int32 codes at scale input_scale x weight_scale, as QLinearConv wants.
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "onnx_rewrite.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/files/calibration_file.hpp"

namespace qk::onnxfile {

namespace {

bool is_target(const onnx::NodeProto& n) {
  if (!n.domain().empty() && n.domain() != "ai.onnx") return false;
  const std::string& op = n.op_type();
  return op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul";
}

bool is_fused_activation(const onnx::NodeProto& n) {
  return (n.domain().empty() || n.domain() == "ai.onnx") && (n.op_type() == "Relu" || n.op_type() == "Clip");
}

// Float weights by name, with their type (a model may hold float16 weights, which stay as they are).
std::map<std::string, std::int32_t> weight_types(onnx::ModelProto& model) {
  std::map<std::string, std::int32_t> types;
  for (const Weight& w : float_weights(model)) types[w.name] = w.tensor->data_type();
  return types;
}

// The values of one target node that take a Q/DQ pair: its activation inputs and its (fused) output.
std::vector<std::string> pair_values(const onnx::GraphProto& g, const onnx::NodeProto& n,
                                     const std::map<std::string, std::int32_t>& weights) {
  std::vector<std::string> values;
  // QuantizeLinear/DequantizeLinear speak float32 here: a node computing in float16 is left alone.
  for (const auto& in : n.input())
    if (const auto it = weights.find(in); it != weights.end() && it->second != kFloat) return values;
  const int activations = (n.op_type() == "MatMul" || n.op_type() == "Gemm") ? 2 : 1;
  for (int k = 0; k < std::min(activations, n.input_size()); ++k)
    if (!n.input(k).empty() && !weights.count(n.input(k))) values.push_back(n.input(k));
  if (n.output_size() > 0) {
    std::string out = n.output(0);
    const std::vector<Use> uses = uses_of(g, out);
    if (uses.size() == 1 && uses[0].graph == &g && is_fused_activation(*uses[0].node))
      out = uses[0].node->output(0);
    values.push_back(out);
  }
  return values;
}

std::string scalar_bytes(float v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}

// Where a value is defined: the graph, and the producing node's index (-1: a graph input or initializer).
struct Definition {
  onnx::GraphProto* graph = nullptr;
  int node = -1;
  int output = 0;
};
Definition find_definition(onnx::ModelProto& model, const std::string& value) {
  Definition d;
  for_each_graph(*model.mutable_graph(), [&](onnx::GraphProto& g) {
    if (d.graph) return;
    for (int i = 0; i < g.node_size(); ++i)
      for (int o = 0; o < g.node(i).output_size(); ++o)
        if (g.node(i).output(o) == value) {
          d = {&g, i, o};
          return;
        }
    for (const auto& in : g.input())
      if (in.name() == value) d = {&g, -1, 0};
    for (const auto& t : g.initializer())
      if (t.name() == value) d = {&g, -1, 0};
  });
  return d;
}

}  // namespace

void rename_reads(onnx::GraphProto& g, const std::string& from, const std::string& to) {
  for (auto& node : *g.mutable_node()) {
    for (auto& in : *node.mutable_input())
      if (in == from) in = to;
    for (auto& a : *node.mutable_attribute()) {
      auto visit = [&](onnx::GraphProto& sub) {
        // A subgraph that defines the name itself (input, initializer or node output) shadows it.
        for (const auto& i : sub.input())
          if (i.name() == from) return;
        for (const auto& t : sub.initializer())
          if (t.name() == from) return;
        for (const auto& n : sub.node())
          for (const auto& o : n.output())
            if (o == from) return;
        rename_reads(sub, from, to);
      };
      if (a.has_g()) visit(*a.mutable_g());
      for (auto& sg : *a.mutable_graphs()) visit(sg);
    }
  }
}

void plan_activations(RewriteContext& ctx) {
  CalibrationFileInfo info;
  const ObserverMap calibrated = read_calibration(ctx.options.calib_path, &info);
  if (info.dynamic_activations)
    throw Error(ctx.options.calib_path +
                ": calibrated with a preset whose activations are quantized at run time (" + info.preset +
                "); static QDQ needs a static preset (generic, ane, edgetpu, hexagon)");
  const std::map<std::string, std::int32_t> weights = weight_types(ctx.model);
  std::set<std::string> wanted, missing;
  for_each_graph(*ctx.model.mutable_graph(), [&](onnx::GraphProto& g) {
    for (const auto& n : g.node())
      if (is_target(n))
        for (const auto& v : pair_values(g, n, weights)) (calibrated.count(v) ? wanted : missing).insert(v);
  });
  for (const auto& v : missing) ctx.report.kept_float.push_back(v + ": no calibration for this activation");
  for (const auto& v : wanted) {
    const StoredParams p = read_calibrated_params(ctx.options.calib_path, v);
    if (p.params.scale.size() != 1 || p.params.spec.bits != 8 || p.params.spec.has_explicit_range()) {
      ctx.report.kept_float.push_back(
          v + ": calibrated per channel or below 8 bits; activations need 8-bit per tensor");
      continue;
    }
    RewriteContext::ActParams a;
    a.scale = p.params.scale[0];
    a.zero_point = p.params.zero_point.empty() ? 0 : p.params.zero_point[0];
    a.type = p.params.spec.is_signed ? kInt8 : kUint8;
    ctx.activation_params[v] = a;
  }
  // Ops that only move or select values (MaxPool keeps the largest, Reshape moves) run on codes when their
  // input and output share one scale and zero point, as ONNX Runtime's own quantizer arranges: give their
  // output its input's parameters (whatever the calibration method made of the output's own range).
  static const std::set<std::string> pass_through = {"MaxPool",   "GlobalMaxPool", "Flatten",   "Reshape",
                                                     "Transpose", "Squeeze",       "Unsqueeze", "Identity"};
  for (bool changed = true; changed;) {
    changed = false;
    for_each_graph(*ctx.model.mutable_graph(), [&](onnx::GraphProto& g) {
      for (const auto& n : g.node()) {
        if (!pass_through.count(n.op_type()) || n.input_size() == 0 || n.output_size() == 0) continue;
        const auto in = ctx.activation_params.find(n.input(0));
        const auto out = ctx.activation_params.find(n.output(0));
        if (in == ctx.activation_params.end() || out == ctx.activation_params.end()) continue;
        const auto& [a, b] = std::pair(in->second, out->second);
        if (a.scale != b.scale || a.zero_point != b.zero_point || a.type != b.type) {
          out->second = in->second;
          changed = true;
        }
      }
    });
  }
}

void insert_activation_qdq(RewriteContext& ctx) {
  std::map<std::string, std::string> original;  // a graph input's dequantized name -> the input
  for (const auto& [value, a] : ctx.activation_params) {
    const Definition d = find_definition(ctx.model, value);
    if (!d.graph) continue;
    onnx::GraphProto& g = *d.graph;
    const std::string scale = ctx.names.fresh(value + "_scale");
    const std::string zero = ctx.names.fresh(value + "_zero_point");
    const std::string codes = ctx.names.fresh(value + "_quantized");
    *g.add_initializer() = make_tensor(scale, kFloat, {}, scalar_bytes(a.scale));
    *g.add_initializer() = make_tensor(zero, a.type, {}, std::string(1, static_cast<char>(a.zero_point)));
    std::string source = value, result = value;
    if (d.node >= 0) {
      // The producer writes a new name; the pair gives back the original, so every reader (graph outputs
      // and subgraphs included) reads the quantized value without being touched.
      source = ctx.names.fresh(value + "_float");
      *g.mutable_node(d.node)->mutable_output(d.output) = source;
    } else {
      result = ctx.names.fresh(value + "_dequantized");
      rename_reads(g, value, result);
      original[result] = value;
    }
    *g.add_node() = make_node("QuantizeLinear", {source, scale, zero}, {codes},
                              ctx.names.fresh(value + "_QuantizeLinear"));
    *g.add_node() = make_node("DequantizeLinear", {codes, scale, zero}, {result},
                              ctx.names.fresh(value + "_DequantizeLinear"));
    ctx.report.activations.push_back(value);
  }
  // Int32 biases: bias / (input scale x weight scale), per output channel, zero point 0. The Conv/Gemm
  // nodes are listed first and rewritten after (a rewrite adds nodes to graphs a walk would be inside).
  std::map<std::string, std::vector<Weight>> float_by_name;
  for (const Weight& w : float_weights(ctx.model)) float_by_name[w.name].push_back(w);
  std::vector<std::array<std::string, 3>> biased;  // input, weight, bias
  for_each_graph(*ctx.model.mutable_graph(), [&](onnx::GraphProto& g) {
    for (const auto& n : g.node())
      if ((n.op_type() == "Conv" || n.op_type() == "Gemm") && n.input_size() >= 3 && !n.input(2).empty())
        biased.push_back({n.input(0), n.input(1), n.input(2)});
  });
  std::set<std::string> converted;
  for (auto [input, weight, bias_name] : biased) {
    // The activation input reads the DequantizeLinear's result now: find its pair by the original name.
    if (original.count(input)) input = original[input];
    const auto act = ctx.activation_params.find(input);
    const auto wp = ctx.weight_params.find(weight);
    const auto bias = float_by_name.find(bias_name);
    // One float tensor of that name in the whole model (no shadowing to resolve), read by this node only.
    if (act == ctx.activation_params.end() || wp == ctx.weight_params.end() || bias == float_by_name.end() ||
        bias->second.size() != 1 || converted.count(bias_name))
      continue;
    const Weight& b = bias->second.front();
    if (b.tensor->data_type() != kFloat || dims(*b.tensor).size() != 1 ||
        uses_of(*b.graph, b.name).size() != 1)
      continue;
    if (!ctx.initializers_are_inputs && b.constant_node < 0 && is_graph_input(*b.graph, b.name)) continue;
    const std::vector<float> values = read_floats(*b.tensor, ctx.dir);
    const QuantParams& w = wp->second;
    if (w.scale.size() != 1 && w.scale.size() != values.size()) continue;
    std::vector<float> scales(values.size());
    std::vector<std::int32_t> q(values.size());
    for (std::size_t c = 0; c < values.size(); ++c) {
      scales[c] = act->second.scale * (w.scale.size() == 1 ? w.scale[0] : w.scale[c]);
      const double r = std::nearbyint(double{values[c]} / scales[c]);
      q[c] = static_cast<std::int32_t>(std::clamp(r, -2147483648.0, 2147483647.0));
    }
    const std::vector<std::int64_t> shape = {static_cast<std::int64_t>(values.size())};
    std::string qb(q.size() * 4, '\0'), sb(scales.size() * 4, '\0');
    std::memcpy(qb.data(), q.data(), qb.size());
    std::memcpy(sb.data(), scales.data(), sb.size());
    onnx::TensorProto codes = make_tensor(ctx.names.fresh(b.name + "_quantized"), kInt32, shape, qb);
    onnx::TensorProto scale = make_tensor(ctx.names.fresh(b.name + "_scale"), kFloat, shape, sb);
    onnx::TensorProto zero =
        make_tensor(ctx.names.fresh(b.name + "_zero_point"), kInt32, shape, std::string(qb.size(), '\0'));
    onnx::NodeProto dq = make_node("DequantizeLinear", {codes.name(), scale.name(), zero.name()}, {b.name},
                                   ctx.names.fresh(b.name + "_DequantizeLinear"));
    set_int_attribute(dq, "axis", 0);
    onnx::GraphProto& bg = *b.graph;
    if (b.constant_node >= 0) {
      *bg.add_initializer() = std::move(codes);
      *bg.mutable_node(b.constant_node) = std::move(dq);
    } else {
      *b.tensor = std::move(codes);
      *bg.add_node() = std::move(dq);
      drop_graph_input(bg, b.name);
    }
    *bg.add_initializer() = std::move(scale);
    *bg.add_initializer() = std::move(zero);
    converted.insert(b.name);
  }
  // The weight pass listed these among the float tensors; they are int32 codes now.
  std::erase_if(ctx.report.kept_float, [&](const std::string& line) {
    const auto colon = line.find(": ");
    return colon != std::string::npos && converted.count(line.substr(0, colon));
  });
  ctx.report.int32_biases = static_cast<std::int64_t>(converted.size());
}

}  // namespace qk::onnxfile
