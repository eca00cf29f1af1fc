// Dynamic quantization for quantize_onnx: a MatMul with a constant 2-D weight B [K, N] becomes
//   DynamicQuantizeLinear(A) -> A_q (uint8), A_scale, A_zero_point     (parameters computed per run)
//   MatMulInteger(A_q, B_q (int8, per column), A_zero_point, B_zero_point) -> int32
//   Cast(float) * (A_scale * B_scale[N])
// the pattern onnxruntime.quantization.quantize_dynamic writes and ONNX Runtime's graph optimizer fuses
// into DynamicQuantizeMatMul. B is quantized per column (axis 1, its output channels), symmetric int8,
// zero points 0, by quantkit's rules. Other weights (Conv, Gemm, LSTM) get weight-only DequantizeLinear.
#include <cmath>
#include <cstring>
#include <limits>

#include "onnx_rewrite.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qk::onnxfile {

void quantize_dynamic_matmuls(RewriteContext& ctx) {
  const OnnxQuantOptions& opt = ctx.options;
  for (const Weight& w : float_weights(ctx.model)) {
    const Shape shape = dims(*w.tensor);
    if (shape.size() != 2 || numel(*w.tensor) < opt.min_elements || w.tensor->data_type() != kFloat) continue;
    if (!ctx.initializers_are_inputs && w.constant_node < 0 && is_graph_input(*w.graph, w.name)) continue;
    if (!is_selected(opt, w.name)) continue;
    const WeightUse use = weight_use(*w.graph, w.name);
    if (!use.direct || use.compute.empty()) continue;
    bool only_matmul_b = true;
    for (const Use& u : use.compute)
      only_matmul_b = only_matmul_b && u.node->op_type() == "MatMul" && u.input == 1 &&
                      (u.node->domain().empty() || u.node->domain() == "ai.onnx");
    if (!only_matmul_b) continue;
    const std::vector<float> x = read_floats(*w.tensor, ctx.dir);
    QuantSpec spec = default_weight_spec(2);
    spec.axis = 1;  // B's columns: MatMulInteger's per-column zero points
    std::vector<std::int8_t> q;
    const QuantizedWeight qw = quantize_weight(x, shape, spec, opt.weight_range, q);
    const QuantParams& params = qw.params;

    const std::int64_t N = shape[1];
    std::string code_bytes(q.size(), '\0');
    std::memcpy(code_bytes.data(), q.data(), q.size());
    std::string scale_bytes(params.scale.size() * 4, '\0');
    std::memcpy(scale_bytes.data(), params.scale.data(), scale_bytes.size());
    const std::string codes = ctx.names.fresh(w.name + "_quantized");
    const std::string scale = ctx.names.fresh(w.name + "_scale");
    const std::string zero = ctx.names.fresh(w.name + "_zero_point");
    onnx::GraphProto& wg = *w.graph;
    // The weight's tensor becomes the codes; a Constant stays a Constant, now under the codes' name.
    *w.tensor = make_tensor(codes, kInt8, shape, code_bytes);
    if (w.constant_node >= 0)
      wg.mutable_node(w.constant_node)->set_output(0, codes);
    else
      drop_graph_input(wg, w.name);
    *wg.add_initializer() = make_tensor(scale, kFloat, {N}, scale_bytes);
    ctx.created.insert(scale);
    *wg.add_initializer() = make_tensor(zero, kInt8, {N}, std::string(static_cast<std::size_t>(N), '\0'));

    for (const Use& u : use.compute) {
      // Uses point into const graphs; the node to rewrite is the same object.
      auto& mm = const_cast<onnx::NodeProto&>(*u.node);
      auto& g = const_cast<onnx::GraphProto&>(*u.graph);
      const std::string a = mm.input(0), out = mm.output(0);
      const std::string base = mm.name().empty() ? out : mm.name();
      const std::string aq = ctx.names.fresh(base + "_input_quantized");
      const std::string as = ctx.names.fresh(base + "_input_scale");
      const std::string az = ctx.names.fresh(base + "_input_zero_point");
      const std::string acc = ctx.names.fresh(base + "_int32");
      const std::string accf = ctx.names.fresh(base + "_int32_float");
      const std::string both = ctx.names.fresh(base + "_output_scale");
      mm = make_node("DynamicQuantizeLinear", {a}, {aq, as, az},
                     ctx.names.fresh(base + "_DynamicQuantizeLinear"));
      *g.add_node() =
          make_node("MatMulInteger", {aq, codes, az, zero}, {acc}, ctx.names.fresh(base + "_MatMulInteger"));
      onnx::NodeProto cast = make_node("Cast", {acc}, {accf}, ctx.names.fresh(base + "_Cast"));
      set_int_attribute(cast, "to", kFloat);
      *g.add_node() = std::move(cast);
      *g.add_node() = make_node("Mul", {as, scale}, {both}, ctx.names.fresh(base + "_scale_Mul"));
      *g.add_node() = make_node("Mul", {accf, both}, {out}, ctx.names.fresh(base + "_Mul"));
      ++ctx.report.dynamic_matmuls;
    }
    OnnxWeightReport rep;
    rep.name = w.name;
    rep.graph = w.graph_path;
    rep.op = "MatMul (dynamic)";
    rep.shape = shape;
    rep.bits = 8;
    rep.granularity = "per-channel (axis 1)";
    rep.bytes_before = x.size() * 4;
    rep.bytes_after = q.size() + params.scale.size() * 5;
    rep.sqnr_db = compare(x, qw.dequantized).sqnr_db;
    ctx.weight_params[w.name] = params;
    ctx.report.weights.push_back(std::move(rep));
  }
}

}  // namespace qk::onnxfile
