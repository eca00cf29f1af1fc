// Raising the default-domain opset of an ONNX model (see onnx_opset.hpp). Written against ONNX's operator
// changelog (docs/Changelog.md) and its version converter's adapters (onnx/version_converter/adapters).
//
// Ops whose definition changed between opset 7 and 21 in a way a model notices, and what we do (the version
// is the one that changed it; a node is converted when the upgrade crosses that version):
//   9  BatchNormalization  `spatial` removed: dropped when 1 (the default), refused when 0
//   9  Scan                the batch axis and sequence_lens were removed: refused
//   10 Slice               starts/ends/axes attributes -> inputs
//   10 TopK                k attribute -> input ([1] int64)
//   10 Upsample            deprecated then removed: -> Resize (asymmetric coordinates; nearest rounds down,
//                          which is what Upsample does for its scales >= 1; known scales < 1 are refused)
//   10 Dropout             the mask output turns from T to bool: refused when before 10 and the mask is read
//   11 Resize              roi input inserted, and 11's default coordinates (half_pixel) are not 10's:
//                          asymmetric set explicitly; nearest with scales not known >= 1 is refused
//   11 Pad                 pads/value attributes -> inputs (value typed like the data; 0 is the default)
//   11 Clip                min/max attributes -> optional inputs (absent when at float's lowest/max)
//   11 Scatter             deprecated -> ScatterElements (the same definition)
//   12 Dropout             ratio attribute -> optional input: dropped (inference Dropout is the identity)
//   13 Squeeze, Unsqueeze  axes attribute -> input
//   13 Split               split attribute -> input
//   13 ReduceSum           axes attribute -> input
//   13 Softmax, LogSoftmax, Hardmax
//                          before 13 the input is coerced to 2-D at `axis` (default 1); 13 works along one
//                          axis (default -1). Same result when axis is -1 or the last axis of a known rank:
//                          axis set explicitly; otherwise Shape + Flatten(axis) + op(axis=-1) + Reshape.
//   14 BatchNormalization  optional outputs only with training_mode: refused when they are used
//   16 RoiAlign            coordinate_transformation_mode added with a new default: output_half_pixel set
//   18 ReduceMean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare: axes attribute -> input
//   18 Split               without a split input, num_outputs is required: set to the output count
//   20 GridSample          modes renamed: bilinear -> linear, bicubic -> cubic
//   20 DFT                 axis attribute (default 1) -> input
//   21 GroupNormalization  scale/bias become per channel instead of per group: refused
// Every other change from 7 to 21 widens type support, allows negative axes, or adds inputs and attributes
// whose defaults keep the old behaviour (ArgMax select_last_index, DepthToSpace mode DCR, Gemm optional C,
// Reshape allowzero, RNN/GRU/LSTM layout, Shape start/end, ScatterElements reduction, Resize 13+
// additions, Q/DQ axis and block_size, Cast saturate (float8 only), ...): those nodes pass unchanged.
#include "onnx_opset.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>

#include "quantkit/core/error.hpp"

namespace qk::onnxfile {
namespace {

using Fresh = std::function<std::string(const std::string&)>;

bool is_default_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

onnx::AttributeProto* attribute(onnx::NodeProto& node, const std::string& name) {
  for (auto& a : *node.mutable_attribute())
    if (a.name() == name) return &a;
  return nullptr;
}
void erase_attribute(onnx::NodeProto& node, const std::string& name) {
  auto* a = node.mutable_attribute();
  a->erase(std::remove_if(a->begin(), a->end(), [&](const auto& x) { return x.name() == name; }), a->end());
}
std::int64_t int_attr(onnx::NodeProto& node, const std::string& name, std::int64_t fallback) {
  const auto* a = attribute(node, name);
  return a ? a->i() : fallback;
}
std::string string_attr(onnx::NodeProto& node, const std::string& name, const std::string& fallback) {
  const auto* a = attribute(node, name);
  return a ? a->s() : fallback;
}
// The attribute `name`, emptied (added when missing), with its type set.
onnx::AttributeProto& reset_attr(onnx::NodeProto& node, const std::string& name,
                                 onnx::AttributeProto::AttributeType t) {
  auto* a = attribute(node, name);
  if (!a) a = node.add_attribute();
  a->Clear();
  a->set_name(name);
  a->set_type(t);
  return *a;
}
void set_int_attr(onnx::NodeProto& node, const std::string& name, std::int64_t v) {
  reset_attr(node, name, onnx::AttributeProto::INT).set_i(v);
}
void set_string_attr(onnx::NodeProto& node, const std::string& name, const std::string& v) {
  reset_attr(node, name, onnx::AttributeProto::STRING).set_s(v);
}
// Puts `value` at input `index`, with "" (an absent optional input) for any gap before it.
void set_input(onnx::NodeProto& node, int index, const std::string& value) {
  while (node.input_size() <= index) node.add_input("");
  node.set_input(index, value);
}
// The base of the names made for a node's new initializers and nodes: its name, else its first output's.
std::string base_of(const onnx::NodeProto& node) {
  return !node.name().empty() || node.output_size() == 0 ? node.name() : node.output(0);
}
onnx::NodeProto make_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                          const std::string& output) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  for (auto& i : inputs) n.add_input(std::move(i));
  n.add_output(output);
  return n;
}

std::vector<float> tensor_floats(const onnx::TensorProto& t) {
  if (t.data_type() != onnx::TensorProto::FLOAT) return {};
  if (!t.raw_data().empty()) {
    std::vector<float> v(t.raw_data().size() / sizeof(float));
    std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(float));  // little-endian hosts only
    return v;
  }
  return {t.float_data().begin(), t.float_data().end()};
}

// Round-to-nearest-even float -> IEEE half bits, for Clip and Pad bounds of float16 models (Clip and Pad
// before 11 take float16, float and double only).
std::uint32_t float_bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
std::uint16_t to_half(float f) {
  const std::uint32_t b = float_bits(f), sign = (b >> 16) & 0x8000;
  const float a = std::fabs(f);
  if (std::isnan(f)) return static_cast<std::uint16_t>(sign | 0x7E00);
  if (a >= 65520.0f) return static_cast<std::uint16_t>(sign | 0x7C00);  // rounds to infinity
  if (a < 6.103515625e-05f) {                                           // subnormal half: a multiple of 2^-24
    return static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(std::nearbyint(a * 16777216.0f)));
  }
  std::uint32_t m = float_bits(a);
  m += 0xFFF + ((m >> 13) & 1);  // round the 13 dropped mantissa bits to nearest even
  return static_cast<std::uint16_t>(sign | ((m >> 13) - (112u << 10)));
}

// What a graph knows about its values (element type, rank, small float constants), with the enclosing
// graphs' knowledge behind it: subgraphs read outer values by name.
struct Scope {
  const Scope* parent = nullptr;
  std::map<std::string, std::int32_t> type;
  std::map<std::string, int> rank;
  std::map<std::string, std::vector<float>> floats;

  template <class M>
  static auto find(const Scope* s, M Scope::*member, const std::string& name)
      -> decltype(&(s->*member).at(name)) {
    for (; s; s = s->parent)
      if (auto it = (s->*member).find(name); it != (s->*member).end()) return &it->second;
    return nullptr;
  }
  std::int32_t type_of(const std::string& n) const {
    return find(this, &Scope::type, n) ? *find(this, &Scope::type, n) : 0;
  }
  int rank_of(const std::string& n) const {
    return find(this, &Scope::rank, n) ? *find(this, &Scope::rank, n) : -1;
  }
  const std::vector<float>* floats_of(const std::string& n) const { return find(this, &Scope::floats, n); }

  void add(const onnx::ValueInfoProto& v) {
    if (!v.type().has_tensor_type()) return;
    const auto& t = v.type().tensor_type();
    if (t.elem_type() != 0) type[v.name()] = t.elem_type();
    if (t.has_shape()) rank[v.name()] = t.shape().dim_size();
  }
  void add(const std::string& name, const onnx::TensorProto& t) {
    type[name] = t.data_type();
    rank[name] = t.dims_size();
    if (auto v = tensor_floats(t); !v.empty() && v.size() <= 16) floats[name] = std::move(v);
  }
};

// Ops whose outputs have the element type of their first input: enough to type the input of a Clip or Pad
// in the exports that carry no value_info.
// clang-format off
const std::set<std::string> kSameType = {
    "Abs", "Add", "AveragePool", "BatchNormalization", "Ceil", "Clip", "Concat", "Conv", "ConvTranspose",
    "DepthToSpace", "Div", "Dropout", "Elu", "Erf", "Exp", "Expand", "Flatten", "Floor", "Gather", "Gemm",
    "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "Identity", "InstanceNormalization", "LRN",
    "LeakyRelu", "Log", "LogSoftmax", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mul", "Neg", "PRelu", "Pad",
    "Pow", "Reciprocal", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "Relu", "Reshape", "Resize",
    "Selu", "Sigmoid", "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze",
    "Sub", "Sum", "Tanh", "Tile", "Transpose", "Unsqueeze", "Upsample"};
// clang-format on

Scope scope_of(const onnx::GraphProto& g, const Scope* parent) {
  Scope s;
  s.parent = parent;
  for (const auto& v : g.input()) s.add(v);
  for (const auto& v : g.output()) s.add(v);
  for (const auto& v : g.value_info()) s.add(v);
  for (const auto& t : g.initializer()) s.add(t.name(), t);
  for (const auto& n : g.node()) {
    if (!is_default_domain(n.domain()) || n.output_size() == 0) continue;
    if (n.op_type() == "Constant") {
      for (const auto& a : n.attribute())
        if (a.name() == "value" && a.has_t()) s.add(n.output(0), a.t());
    } else if (kSameType.count(n.op_type()) && n.input_size() > 0) {
      const std::int32_t t = s.type_of(n.input(0));
      const int outputs = n.op_type() == "Split" ? n.output_size() : 1;
      for (int i = 0; i < outputs && t != 0; ++i) s.type.emplace(n.output(i), t);
    }
  }
  return s;
}

struct Upgrade {
  std::int64_t from, to;
  const Fresh& fresh;
  std::set<std::string> read;  // every value a node or graph output reads, in any graph
  // Refusals by (op, reason), each with the nodes it names.
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> refused;
  std::map<std::string, int> converted;  // op -> nodes converted

  bool crosses(std::int64_t version) const { return from < version && version <= to; }

  std::string add_tensor(onnx::GraphProto& g, const std::string& base, onnx::TensorProto t) {
    t.set_name(fresh(base));
    *g.add_initializer() = std::move(t);
    return g.initializer(g.initializer_size() - 1).name();
  }
  std::string add_ints(onnx::GraphProto& g, const std::string& base, const std::vector<std::int64_t>& v,
                       bool scalar = false) {
    onnx::TensorProto t;
    t.set_data_type(onnx::TensorProto::INT64);
    if (!scalar) t.add_dims(static_cast<std::int64_t>(v.size()));
    for (auto x : v) t.add_int64_data(x);
    return add_tensor(g, base, std::move(t));
  }
  // A scalar of a float element type (Clip bounds, Pad's constant_value).
  std::string add_scalar(onnx::GraphProto& g, const std::string& base, float v, std::int32_t type) {
    onnx::TensorProto t;
    t.set_data_type(type);
    if (type == onnx::TensorProto::DOUBLE)
      t.add_double_data(v);
    else if (type == onnx::TensorProto::FLOAT16)
      t.add_int32_data(to_half(v));
    else
      t.add_float_data(v);
    return add_tensor(g, base, std::move(t));
  }
  // Moves an ints attribute to input `index` (nothing when the node lacks it: the input stays absent).
  void ints_to_input(onnx::GraphProto& g, onnx::NodeProto& n, const std::string& name, int index,
                     bool scalar = false) {
    const auto* a = attribute(n, name);
    if (!a) return;
    std::vector<std::int64_t> v(a->ints().begin(), a->ints().end());
    if (a->type() == onnx::AttributeProto::INT) v = {a->i()};
    set_input(n, index, add_ints(g, base_of(n) + "_" + name, v, scalar));
    erase_attribute(n, name);
  }

  static bool is_float(std::int32_t t) {
    return t == onnx::TensorProto::FLOAT || t == onnx::TensorProto::DOUBLE || t == onnx::TensorProto::FLOAT16;
  }
  // Clip's bounds that are not float's lowest/max (Clip-6's defaults, which mean "no bound").
  static std::vector<std::pair<std::string, float>> clip_bounds(onnx::NodeProto& n) {
    std::vector<std::pair<std::string, float>> b;
    if (auto* a = attribute(n, "min"); a && a->f() > std::numeric_limits<float>::lowest())
      b.emplace_back("min", a->f());
    if (auto* a = attribute(n, "max"); a && a->f() < std::numeric_limits<float>::max())
      b.emplace_back("max", a->f());
    return b;
  }
  static bool scales_at_least_one(const std::vector<float>* scales) {
    return scales && std::all_of(scales->begin(), scales->end(), [](float x) { return x >= 1.0f; });
  }
  // Upsample's scales: an attribute before 9, then input 1.
  static const std::vector<float>* upsample_scales(onnx::NodeProto& n, const Scope& s,
                                                   std::vector<float>& own) {
    if (auto* a = attribute(n, "scales")) return own.assign(a->floats().begin(), a->floats().end()), &own;
    return n.input_size() > 1 ? s.floats_of(n.input(1)) : nullptr;
  }

  // Why this node cannot be converted, or "".
  std::string refusal(onnx::NodeProto& n, const Scope& s) const {
    const std::string& op = n.op_type();
    std::vector<float> own;
    if (op == "Scan" && crosses(9)) return "changed its inputs in opset 9 (the batch axis was removed)";
    if (op == "BatchNormalization" && crosses(9) && int_attr(n, "spatial", 1) == 0)
      return "has spatial=0, which opset 9 removed";
    if (op == "BatchNormalization" && crosses(14) &&
        std::any_of(n.output().begin() + 1, n.output().end(),
                    [&](const std::string& o) { return read.count(o); }))
      return "uses its training-mode outputs, which opset 14 allows only with training_mode=1";
    if (op == "Dropout" && crosses(10) && n.output_size() > 1 && read.count(n.output(1)))
      return "has its mask read, whose type turns from T to bool in opset 10";
    if (op == "Upsample" && crosses(10)) {
      const std::string mode = string_attr(n, "mode", "nearest");
      if (mode != "nearest" && mode != "linear" && mode != "bilinear") return "has mode " + mode;
      const auto* scales = upsample_scales(n, s, own);
      if (scales && !scales_at_least_one(scales))
        return "downsamples (scales below 1), with rounding Resize does not reproduce";
    }
    if (op == "Resize" && crosses(11) && string_attr(n, "mode", "nearest") == "nearest" &&
        !scales_at_least_one(n.input_size() > 1 ? s.floats_of(n.input(1)) : nullptr))
      return "(nearest) has scales not known to be >= 1: opset 10's rounding has no opset 11 equivalent";
    if (op == "Pad" && crosses(11) && string_attr(n, "mode", "constant") == "constant") {
      const auto* v = attribute(n, "value");
      if (v && v->f() != 0.0f && !is_float(s.type_of(n.input(0))))
        return "has a pad value but the element type of its input is unknown (no value_info)";
    }
    if (op == "Clip" && crosses(11) && !clip_bounds(n).empty() && !is_float(s.type_of(n.input(0))))
      return "has bounds but the element type of its input is unknown (no value_info)";
    if (op == "Unsqueeze" && crosses(13) && !attribute(n, "axes")) return "has no axes";
    if (op == "GroupNormalization" && crosses(21))
      return "takes scale/bias per group, which opset 21 changed to per channel";
    return "";
  }

  // Converts one node; `before`/`after` receive nodes to insert around it.
  void convert(onnx::GraphProto& g, onnx::NodeProto& n, const Scope& s, std::vector<onnx::NodeProto>& before,
               std::vector<onnx::NodeProto>& after) {
    const std::string op = n.op_type();
    // clang-format off
    static const std::set<std::string> kReduce18 = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
        "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};
    static const std::set<std::string> kHandled = {"BatchNormalization", "Clip", "DFT", "Dropout", "GridSample",
        "Hardmax", "LogSoftmax", "Pad", "ReduceSum", "Resize", "RoiAlign", "Scatter", "Slice", "Softmax", "Split",
        "Squeeze", "TopK", "Unsqueeze", "Upsample"};
    // clang-format on
    if (!kHandled.count(op) && !kReduce18.count(op)) return;  // (nor is a Constant's weight serialized below)
    const std::string old = n.SerializeAsString();  // counted as converted when the node differs afterwards
    if (op == "BatchNormalization" && crosses(9)) erase_attribute(n, "spatial");
    if (op == "Slice" && crosses(10)) {
      ints_to_input(g, n, "starts", 1);
      ints_to_input(g, n, "ends", 2);
      ints_to_input(g, n, "axes", 3);
    }
    if (op == "TopK" && crosses(10)) ints_to_input(g, n, "k", 1);
    if (op == "Upsample" && crosses(10)) {
      std::vector<float> own;
      if (upsample_scales(n, s, own) == &own) {  // the scales attribute (opset 7/8) becomes an input
        onnx::TensorProto t;
        t.set_data_type(onnx::TensorProto::FLOAT);
        t.add_dims(static_cast<std::int64_t>(own.size()));
        t.mutable_float_data()->Add(own.begin(), own.end());
        set_input(n, 1, add_tensor(g, base_of(n) + "_scales", std::move(t)));
        erase_attribute(n, "scales");
      }
      n.set_op_type("Resize");
      if (string_attr(n, "mode", "nearest") == "bilinear") set_string_attr(n, "mode", "linear");
    }
    if ((op == "Upsample" && crosses(10)) || (op == "Resize" && crosses(11))) {
      // Opset 10's coordinates: x_in = x_out / scale; nearest takes the floor (scales are >= 1 here).
      const std::string scales = n.input(1);
      set_input(n, 1, "");  // roi, absent
      set_input(n, 2, scales);
      set_string_attr(n, "coordinate_transformation_mode", "asymmetric");
      if (string_attr(n, "mode", "nearest") == "nearest") set_string_attr(n, "nearest_mode", "floor");
    }
    if (op == "Pad" && crosses(11)) {
      const auto* v = attribute(n, "value");
      const float value = v ? v->f() : 0.0f;
      ints_to_input(g, n, "pads", 1);
      if (value != 0.0f && string_attr(n, "mode", "constant") == "constant")
        set_input(n, 2, add_scalar(g, base_of(n) + "_value", value, s.type_of(n.input(0))));
      erase_attribute(n, "value");
    }
    if (op == "Clip" && crosses(11)) {
      for (const auto& [name, bound] : clip_bounds(n))
        set_input(n, name == "min" ? 1 : 2,
                  add_scalar(g, base_of(n) + "_" + name, bound, s.type_of(n.input(0))));
      erase_attribute(n, "min");
      erase_attribute(n, "max");
    }
    if (op == "Scatter" && crosses(11)) n.set_op_type("ScatterElements");
    if (op == "Dropout" && crosses(12)) erase_attribute(n, "ratio");
    if ((op == "Squeeze" || op == "Unsqueeze" || op == "ReduceSum") && crosses(13))
      ints_to_input(g, n, "axes", 1);
    if (op == "Split" && crosses(13)) ints_to_input(g, n, "split", 1);
    if ((op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") && crosses(13)) {
      const std::int64_t axis = int_attr(n, "axis", 1), rank = s.rank_of(n.input(0));
      if (axis == -1 || (rank > 0 && axis == rank - 1)) {
        set_int_attr(n, "axis", axis);  // the same axis, now explicit: 13's default is -1, not 1
      } else {
        // Coerce to 2-D as opset 12 did, normalize along the last axis, and restore the shape.
        const std::string x = n.input(0), y = n.output(0), shape = fresh(x + "_shape"),
                          flat = fresh(x + "_2d"), out = fresh(y + "_2d");
        auto sh = make_node("Shape", fresh(base_of(n) + "_shape"), {x}, shape);
        auto fl = make_node("Flatten", fresh(base_of(n) + "_flatten"), {x}, flat);
        auto rs = make_node("Reshape", fresh(base_of(n) + "_reshape"), {out, shape}, y);
        set_int_attr(fl, "axis", axis);
        n.set_input(0, flat);
        n.set_output(0, out);
        set_int_attr(n, "axis", -1);
        before.push_back(std::move(sh));
        before.push_back(std::move(fl));
        after.push_back(std::move(rs));
      }
    }
    if (kReduce18.count(op) && crosses(18)) ints_to_input(g, n, "axes", 1);
    if (op == "Split" && crosses(18) && (n.input_size() < 2 || n.input(1).empty()) &&
        !attribute(n, "num_outputs"))
      set_int_attr(n, "num_outputs", n.output_size());
    if (op == "RoiAlign" && crosses(16) && !attribute(n, "coordinate_transformation_mode"))
      set_string_attr(n, "coordinate_transformation_mode", "output_half_pixel");  // opset 10's behaviour
    if (op == "GridSample" && crosses(20)) {
      const std::string mode = string_attr(n, "mode", "bilinear");
      set_string_attr(n, "mode", mode == "bilinear" ? "linear" : mode == "bicubic" ? "cubic" : mode);
    }
    if (op == "DFT" && crosses(20)) {
      set_input(n, 2, add_ints(g, base_of(n) + "_axis", {int_attr(n, "axis", 1)}, true));
      erase_attribute(n, "axis");
    }
    if (!before.empty() || n.SerializeAsString() != old) ++converted[op];
  }

  // One walk for both passes: `apply` false only collects refusals, true converts.
  void walk(onnx::GraphProto& g, const Scope* parent, const std::string& path, bool apply) {
    const Scope s = scope_of(g, parent);
    std::map<int, std::pair<std::vector<onnx::NodeProto>, std::vector<onnx::NodeProto>>> inserted;
    for (int i = 0; i < g.node_size(); ++i) {
      auto& n = *g.mutable_node(i);
      for (auto& a : *n.mutable_attribute()) {  // subgraphs first: they see this graph's values
        const std::string sub = path + "/" + (n.name().empty() ? n.op_type() : n.name()) + "." + a.name();
        if (a.has_g()) walk(*a.mutable_g(), &s, sub, apply);
        for (auto& sg : *a.mutable_graphs()) walk(sg, &s, sub, apply);
      }
      if (!is_default_domain(n.domain())) continue;
      if (!apply) {
        if (auto why = refusal(n, s); !why.empty())
          refused[{n.op_type(), why}].push_back(n.name().empty() ? path + " node " + std::to_string(i)
                                                                 : n.name());
        continue;
      }
      std::vector<onnx::NodeProto> before, after;
      convert(g, n, s, before, after);
      if (!before.empty() || !after.empty()) inserted[i] = {std::move(before), std::move(after)};
    }
    if (inserted.empty()) return;
    google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;  // moved, not copied: Constants hold weights
    for (int i = 0; i < g.node_size(); ++i) {
      auto it = inserted.find(i);
      if (it != inserted.end())
        for (auto& x : it->second.first) *nodes.Add() = std::move(x);
      *nodes.Add() = std::move(*g.mutable_node(i));
      if (it != inserted.end())
        for (auto& x : it->second.second) *nodes.Add() = std::move(x);
    }
    g.mutable_node()->Swap(&nodes);
  }
};

void collect_reads(const onnx::GraphProto& g, std::set<std::string>& read) {
  for (const auto& o : g.output()) read.insert(o.name());
  for (const auto& n : g.node()) {
    read.insert(n.input().begin(), n.input().end());
    for (const auto& a : n.attribute()) {
      if (a.has_g()) collect_reads(a.g(), read);
      for (const auto& sg : a.graphs()) collect_reads(sg, read);
    }
  }
}

// The IR version each target opset first appeared with (onnx/helper.py VERSION_TABLE).
std::int64_t ir_version_for(std::int64_t opset) {
  return opset >= 21 ? 10 : opset >= 19 ? 9 : opset >= 15 ? 8 : 7;
}

}  // namespace

OpsetUpgrade upgrade_opset(onnx::ModelProto& model, std::int64_t target, const Fresh& fresh) {
  onnx::OperatorSetIdProto* import = nullptr;
  for (auto& o : *model.mutable_opset_import())
    if (is_default_domain(o.domain())) import = &o;
  if (!import) throw Error("the model imports no default-domain (ai.onnx) opset");
  OpsetUpgrade result{import->version(), target, {}};
  if (result.from >= target) return {result.from, result.from, {}};
  if (target < kMinTargetOpset || target > kMaxTargetOpset)
    throw Error("cannot raise the opset to " + std::to_string(target) + ": supported targets are " +
                std::to_string(kMinTargetOpset) + " to " + std::to_string(kMaxTargetOpset));
  if (result.from < 7)
    throw Error("cannot raise the opset from " + std::to_string(result.from) +
                ": models below opset 7 (pre-broadcasting Add/Mul, consumed_inputs) are not supported");

  Upgrade up{result.from, target, fresh, {}, {}, {}};
  collect_reads(model.graph(), up.read);
  up.walk(*model.mutable_graph(), nullptr, "main", false);  // refuse before changing anything
  if (!up.refused.empty()) {
    std::string msg =
        "cannot raise the opset from " + std::to_string(result.from) + " to " + std::to_string(target);
    const char* sep = ": ";
    for (const auto& [key, nodes] : up.refused) {
      msg += sep + key.first + " (" + std::to_string(nodes.size()) +
             (nodes.size() == 1 ? " node: " : " nodes: ");
      for (std::size_t i = 0; i < nodes.size() && i < 5; ++i) msg += (i ? ", " : "") + nodes[i];
      msg += (nodes.size() > 5 ? ", ...) " : ") ") + key.second;
      sep = "; ";
    }
    throw Error(msg);
  }
  up.walk(*model.mutable_graph(), nullptr, "main", true);
  for (const auto& [op, count] : up.converted) result.converted.push_back(op + " x" + std::to_string(count));
  import->set_version(target);
  model.set_ir_version(std::max<std::int64_t>(model.ir_version(), ir_version_for(target)));
  return result;
}

}  // namespace qk::onnxfile
