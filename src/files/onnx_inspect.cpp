// inspect_onnx: what a model holds (opset, values, ops, every initializer and Constant tensor with the op
// that uses it), which weights quantize_onnx would quantize, how the quantized ones are stored, and with a
// reference model each quantized weight's error against the reference's float weight of the same name.
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "onnx_rewrite.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qk {

namespace {

using namespace onnxfile;

std::string value_text(const onnx::ValueInfoProto& v) {
  std::string s = v.name();
  if (v.type().has_tensor_type()) {
    const auto& t = v.type().tensor_type();
    s += " " + type_name(t.elem_type()) + " [";
    for (int i = 0; i < t.shape().dim_size(); ++i) {
      const auto& d = t.shape().dim(i);
      if (i) s += ", ";
      s += d.has_dim_value() ? std::to_string(d.dim_value()) : (d.dim_param().empty() ? "?" : d.dim_param());
    }
    s += "]";
  }
  return s;
}

template <class F>
void walk(const onnx::GraphProto& g, const std::string& path, F&& f) {
  f(g, path);
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    for (const auto& a : n.attribute()) {
      const std::string sub =
          path + "/" + (n.name().empty() ? n.op_type() + "_" + std::to_string(i) : n.name()) + "." + a.name();
      if (a.has_g()) walk(a.g(), sub, f);
      for (const auto& sg : a.graphs()) walk(sg, sub, f);
    }
  }
}

const onnx::TensorProto* find_tensor(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& t : g.initializer())
    if (t.name() == name) return &t;
  for (const auto& n : g.node())
    if (n.op_type() == "Constant" && n.output_size() == 1 && n.output(0) == name)
      for (const auto& a : n.attribute())
        if (a.name() == "value" && a.has_t()) return &a.t();
  return nullptr;
}

// The float values a DequantizeLinear node computes from constant inputs.
std::vector<float> dequantize_node(const onnx::GraphProto& g, const onnx::NodeProto& dq,
                                   const onnx::TensorProto& x, const std::string& dir) {
  const onnx::TensorProto* scale = dq.input_size() > 1 ? find_tensor(g, dq.input(1)) : nullptr;
  const onnx::TensorProto* zero =
      dq.input_size() > 2 && !dq.input(2).empty() ? find_tensor(g, dq.input(2)) : nullptr;
  if (!scale) throw Error("DequantizeLinear '" + dq.name() + "' has no constant scale");
  const std::vector<float> s = read_floats(*scale, dir);
  const std::string raw = read_raw(x, dir);
  const std::string zraw = zero ? read_raw(*zero, dir) : std::string();
  const std::vector<std::int64_t> shape = dims(x);
  const std::int64_t n = numel(x);
  const int rank = static_cast<int>(shape.size());
  std::int64_t axis = int_attribute(dq, "axis", 1);
  if (axis < 0) axis += rank;
  const std::int64_t block = int_attribute(dq, "block_size", 0);
  const bool per_tensor = s.size() == 1 && dims(*scale).size() <= 1;
  auto code = [&](const std::string& bytes, std::int32_t type, std::int64_t i) -> std::int32_t {
    switch (type) {
      case kInt8:
        return static_cast<std::int8_t>(bytes[static_cast<std::size_t>(i)]);
      case kUint8:
        return static_cast<std::uint8_t>(bytes[static_cast<std::size_t>(i)]);
      case kInt32: {
        std::int32_t v;
        std::memcpy(&v, bytes.data() + 4 * i, 4);
        return v;
      }
      case kInt4:
      case kUint4: {
        const auto byte = static_cast<std::uint8_t>(bytes[static_cast<std::size_t>(i / 2)]);
        const int nib = i % 2 ? byte >> 4 : byte & 0x0f;
        return type == kInt4 && nib >= 8 ? nib - 16 : nib;
      }
      default:
        throw Error("cannot read " + type_name(type) + " codes");
    }
  };
  // The node's parameters must fit its codes before anything is indexed (inspect reads any model).
  const std::string what = "DequantizeLinear '" + dq.name() + "'";
  if (!per_tensor && (axis < 0 || axis >= rank)) throw Error(what + ": axis out of range");
  std::int64_t inner = 1;
  for (int d = static_cast<int>(axis) + 1; d < rank; ++d) inner *= shape[static_cast<std::size_t>(d)];
  const std::int64_t along = rank && !per_tensor ? shape[static_cast<std::size_t>(axis)] : 1;
  const std::int64_t slots =
      per_tensor ? 1
                 : (block > 0 ? n / std::max<std::int64_t>(along, 1) * ((along + block - 1) / block) : along);
  if (static_cast<std::int64_t>(s.size()) != slots)
    throw Error(what + ": " + std::to_string(s.size()) + " scales for " + std::to_string(slots) + " slots");
  if (zero && numel(*zero) != static_cast<std::int64_t>(s.size()))
    throw Error(what + ": zero point and scale sizes differ");
  if (raw.size() != raw_bytes(x.data_type(), n)) throw Error(what + ": codes of the wrong size");
  if (zero && zraw.size() != raw_bytes(zero->data_type(), numel(*zero)))
    throw Error(what + ": zero point of the wrong size");
  std::vector<float> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t slot = 0;
    if (!per_tensor) {
      const std::int64_t c = (i / inner) % along;
      if (block > 0) {
        const std::int64_t outer = i / (inner * along);
        const std::int64_t blocks = (along + block - 1) / block;
        slot = (outer * blocks + c / block) * inner + i % inner;
      } else {
        slot = c;
      }
    }
    const std::int32_t z = zero ? code(zraw, zero->data_type(), per_tensor ? 0 : slot) : 0;
    out[static_cast<std::size_t>(i)] =
        static_cast<float>(code(raw, x.data_type(), i) - z) * s[static_cast<std::size_t>(slot)];
  }
  return out;
}

std::string storage_text(const onnx::NodeProto& dq, const onnx::TensorProto& x,
                         const onnx::TensorProto* scale) {
  std::string s = type_name(x.data_type());
  const std::int64_t block = int_attribute(dq, "block_size", 0);
  if (block > 0)
    return s + " blocked (" + std::to_string(block) + " along axis " +
           std::to_string(int_attribute(dq, "axis", 1)) + ")";
  if (scale && numel(*scale) > 1)
    return s + " per-channel (axis " + std::to_string(int_attribute(dq, "axis", 1)) + ")";
  return s + " per-tensor";
}

std::map<std::string, std::vector<float>> reference_weights(const std::string& path) {
  LoadedModel ref = load_model(path);
  std::map<std::string, std::vector<float>> out;
  for (const Weight& w : float_weights(ref.model)) out.emplace(w.name, read_floats(*w.tensor, ref.dir));
  return out;
}

}  // namespace

OnnxInspectReport inspect_onnx(const std::string& path, const std::string& reference) {
  LoadedModel m = load_model(path);
  const std::map<std::string, std::vector<float>> ref =
      reference.empty() ? decltype(ref){} : reference_weights(reference);
  OnnxInspectReport r;
  r.path = path;
  r.file_bytes = m.file_bytes;
  r.ir_version = m.model.ir_version();
  r.opset = default_opset(m.model);
  r.producer =
      m.model.producer_name() + (m.model.producer_version().empty() ? "" : " " + m.model.producer_version());
  for (const auto& v : m.model.graph().input()) r.inputs.push_back(value_text(v));
  for (const auto& v : m.model.graph().output()) r.outputs.push_back(value_text(v));
  std::map<std::string, std::int64_t> ops;
  const OnnxQuantOptions defaults;
  walk(m.model.graph(), "main", [&](const onnx::GraphProto& g, const std::string& gpath) {
    if (gpath != "main") ++r.subgraphs;
    r.nodes += g.node_size();
    for (const auto& n : g.node()) ++ops[n.op_type()];
    auto add = [&](const onnx::TensorProto& t, const std::string& name, bool constant) {
      OnnxInitializerInfo info;
      info.name = name;
      info.graph = gpath;
      info.dtype = type_name(t.data_type());
      info.shape = dims(t);
      info.bytes = t.data_type() == kString ? 0 : raw_bytes(t.data_type(), numel(t));
      info.constant_node = constant;
      const WeightUse use = weight_use(g, name);
      if (!use.compute.empty()) info.op = use.compute.front().node->op_type();
      bool eligible = !use.compute.empty();
      for (const Use& u : use.compute) eligible = eligible && is_weight_input(*u.node, u.input);
      info.would_quantize = eligible && is_float_type(t.data_type()) && info.shape.size() >= 2 &&
                            numel(t) >= defaults.min_elements;
      // Codes read by a DequantizeLinear: report what they stand for, and compare with the reference.
      for (const Use& u : uses_of(g, name)) {
        if (u.node->op_type() != "DequantizeLinear" || u.input != 0) continue;
        const onnx::TensorProto* scale =
            u.node->input_size() > 1 ? find_tensor(*u.graph, u.node->input(1)) : nullptr;
        info.quantized_as = storage_text(*u.node, t, scale);
        const std::string original = u.node->output(0);
        const WeightUse dq_use = weight_use(*u.graph, original);
        if (!dq_use.compute.empty()) info.op = dq_use.compute.front().node->op_type();
        const auto it = ref.find(original);
        if (it != ref.end() && scale && it->second.size() == static_cast<std::size_t>(numel(t))) {
          std::vector<float> y;
          try {
            y = dequantize_node(*u.graph, *u.node, t, m.dir);
          } catch (const Error& e) {
            throw Error(path + ": " + e.what());
          }
          const ErrorStats e = compare(it->second, y);
          info.sqnr_db = e.sqnr_db;
          info.max_abs_error = e.max_abs;
        }
        break;
      }
      r.initializers.push_back(std::move(info));
    };
    for (const auto& t : g.initializer()) add(t, t.name(), false);
    for (const auto& n : g.node())
      if (n.op_type() == "Constant" && n.output_size() == 1)
        for (const auto& a : n.attribute())
          if (a.name() == "value" && a.has_t()) add(a.t(), n.output(0), true);
  });
  r.op_counts.assign(ops.begin(), ops.end());
  return r;
}

std::vector<std::pair<std::string, std::vector<std::int64_t>>> onnx_weight_shapes(const std::string& path) {
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> out;
  for (const auto& i : inspect_onnx(path).initializers)
    if (i.would_quantize) out.emplace_back(i.name, i.shape);
  if (out.empty()) throw Error(path + ": no float weight of a Conv, Gemm, MatMul or recurrent op to plan for");
  return out;
}

std::vector<float> read_onnx_weight(const std::string& path, const std::string& name,
                                    std::vector<std::int64_t>* shape) {
  LoadedModel m = load_model(path);
  for (const Weight& w : float_weights(m.model))
    if (w.name == name) {
      if (shape) *shape = dims(*w.tensor);
      return read_floats(*w.tensor, m.dir);
    }
  throw Error(path + ": no float weight named '" + name + "'");
}

}  // namespace qk
