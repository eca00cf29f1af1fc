// Raising a model's opset (src/files/onnx_opset.cpp) on hand-built opset 9/10/11/17 models: the converted
// nodes, inputs and initializers, the refusals' messages, and Debian's onnx.checker on what comes out.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "onnx_opset.hpp"
#include "quantkit/core/error.hpp"

namespace {

namespace fs = std::filesystem;
using qk::onnxfile::upgrade_opset;

onnx::AttributeProto* add_attr(onnx::NodeProto& n, const std::string& name,
                               onnx::AttributeProto::AttributeType t) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(t);
  return a;
}
void ints(onnx::NodeProto& n, const std::string& name, std::initializer_list<std::int64_t> v) {
  auto* a = add_attr(n, name, onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}
void int1(onnx::NodeProto& n, const std::string& name, std::int64_t v) {
  add_attr(n, name, onnx::AttributeProto::INT)->set_i(v);
}
void float1(onnx::NodeProto& n, const std::string& name, float v) {
  add_attr(n, name, onnx::AttributeProto::FLOAT)->set_f(v);
}
void str(onnx::NodeProto& n, const std::string& name, const std::string& v) {
  add_attr(n, name, onnx::AttributeProto::STRING)->set_s(v);
}
onnx::NodeProto& node(onnx::GraphProto& g, const std::string& op, std::vector<std::string> in,
                      std::vector<std::string> out, const std::string& name, const std::string& domain = "") {
  auto& n = *g.add_node();
  n.set_op_type(op);
  n.set_name(name);
  n.set_domain(domain);
  for (auto& x : in) n.add_input(x);
  for (auto& x : out) n.add_output(x);
  return n;
}
void value(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list, const std::string& name,
           std::int32_t type, std::vector<std::int64_t> shape) {
  auto* v = list->Add();
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(type);
  auto* s = t->mutable_shape();
  for (auto d : shape) s->add_dim()->set_dim_value(d);
}
void floats_init(onnx::GraphProto& g, const std::string& name, std::vector<float> v) {
  auto* t = g.add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(static_cast<std::int64_t>(v.size()));
  for (float x : v) t->add_float_data(x);
}
onnx::ModelProto model(std::int64_t opset, std::int64_t ir = 4) {
  onnx::ModelProto m;
  m.set_ir_version(ir);
  m.set_producer_name("test_onnx_opset");
  m.add_opset_import()->set_version(opset);
  m.mutable_graph()->set_name("main");
  return m;
}

// A local stand-in for onnx_model's NameSet: base, base_1, ... avoiding every name in the model.
struct Names {
  std::set<std::string> used;
  void collect(const onnx::GraphProto& g) {
    for (const auto& v : g.input()) used.insert(v.name());
    for (const auto& t : g.initializer()) used.insert(t.name());
    for (const auto& n : g.node()) {
      used.insert(n.name());
      used.insert(n.input().begin(), n.input().end());
      used.insert(n.output().begin(), n.output().end());
      for (const auto& a : n.attribute())
        if (a.has_g()) collect(a.g());
    }
  }
  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int i = 1; used.count(name); ++i) name = base + "_" + std::to_string(i);
    used.insert(name);
    return name;
  }
};
qk::onnxfile::OpsetUpgrade upgrade(onnx::ModelProto& m, std::int64_t target = 13) {
  auto names = std::make_shared<Names>();
  names->collect(m.graph());
  return upgrade_opset(m, target, [names](const std::string& b) { return names->fresh(b); });
}

const onnx::NodeProto& find(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& n : g.node())
    if (n.name() == name) return n;
  throw std::runtime_error("no node " + name);
}
bool has_attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return true;
  return false;
}
const onnx::TensorProto& init(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& t : g.initializer())
    if (t.name() == name) return t;
  throw std::runtime_error("no initializer " + name);
}
std::vector<std::int64_t> init_ints(const onnx::GraphProto& g, const std::string& name) {
  const auto& t = init(g, name);
  EXPECT_EQ(t.data_type(), onnx::TensorProto::INT64);
  return {t.int64_data().begin(), t.int64_data().end()};
}
using V = std::vector<std::int64_t>;

// Debian's python3-onnx checker with full_check (strict shape inference). QK_ONNX_OPSET_DUMP=DIR keeps the
// models (NAME.orig.onnx, NAME.up.onnx) for a manual ONNX Runtime comparison.
void check(const onnx::ModelProto& original, const onnx::ModelProto& upgraded, const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("qk_onnx_opset_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / (name + ".onnx");
  std::ofstream(file, std::ios::binary) << upgraded.SerializeAsString();
  if (const char* dump = std::getenv("QK_ONNX_OPSET_DUMP")) {
    std::ofstream(fs::path(dump) / (name + ".orig.onnx"), std::ios::binary) << original.SerializeAsString();
    std::ofstream(fs::path(dump) / (name + ".up.onnx"), std::ios::binary) << upgraded.SerializeAsString();
  }
  const std::string cmd =
      "/usr/bin/python3 -c \"import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), "
      "full_check=True)\" " +
      file.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << name;
  fs::remove_all(dir);
}
bool have_checker() { return std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0; }

// Opset 9, as an old PyTorch export: attributes everywhere, Upsample, a Softmax on the default axis 1.
onnx::ModelProto vision9() {
  auto m = model(9);
  auto& g = *m.mutable_graph();
  value(g.mutable_input(), "x", onnx::TensorProto::FLOAT, {1, 3, 8, 8});
  auto& sl = node(g, "Slice", {"x"}, {"s"}, "slice");
  ints(sl, "starts", {1, 1}), ints(sl, "ends", {7, 7}), ints(sl, "axes", {2, 3});
  auto& pad = node(g, "Pad", {"s"}, {"p"}, "pad");
  ints(pad, "pads", {0, 0, 1, 1, 0, 0, 1, 1}), float1(pad, "value", 0.5f);
  auto& clip = node(g, "Clip", {"p"}, {"c"}, "clip");
  float1(clip, "min", 0.0f), float1(clip, "max", 6.0f);
  floats_init(g, "up_scales", {1, 1, 2, 2});
  str(node(g, "Upsample", {"c", "up_scales"}, {"u"}, "upsample"), "mode", "nearest");
  auto& rs = node(g, "ReduceSum", {"u"}, {"r"}, "reducesum");
  ints(rs, "axes", {1}), int1(rs, "keepdims", 1);
  ints(node(g, "Squeeze", {"r"}, {"q"}, "squeeze"), "axes", {1});
  ints(node(g, "Unsqueeze", {"q"}, {"uq"}, "unsqueeze"), "axes", {0});
  auto& split = node(g, "Split", {"uq"}, {"a", "b"}, "split");
  int1(split, "axis", 3), ints(split, "split", {8, 8});
  node(g, "Add", {"a", "b"}, {"ab"}, "add");
  node(g, "Softmax", {"ab"}, {"sm"}, "softmax");  // axis 1 of a rank-4 value: rewritten
  int1(node(g, "LogSoftmax", {"ab"}, {"ls"}, "logsoftmax"), "axis", 3);  // the last axis: kept
  value(g.mutable_value_info(), "ab", onnx::TensorProto::FLOAT, {1, 1, 16, 8});
  float1(node(g, "Dropout", {"sm"}, {"d", "mask"}, "dropout"), "ratio", 0.3f);
  int1(node(g, "TopK", {"d"}, {"vals", "idx"}, "topk"), "k", 3);
  value(g.mutable_output(), "vals", onnx::TensorProto::FLOAT, {1, 1, 16, 3});
  value(g.mutable_output(), "idx", onnx::TensorProto::INT64, {1, 1, 16, 3});
  value(g.mutable_output(), "ls", onnx::TensorProto::FLOAT, {1, 1, 16, 8});
  return m;
}

TEST(OnnxOpset, Opset9ExportTo13) {
  auto m = vision9();
  const auto original = m;
  const auto up = upgrade(m);
  EXPECT_EQ(up.from, 9);
  EXPECT_EQ(up.to, 13);
  EXPECT_EQ(m.opset_import(0).version(), 13);
  EXPECT_EQ(m.ir_version(), 7);
  const auto& g = m.graph();

  const auto& sl = find(g, "slice");
  ASSERT_EQ(sl.input_size(), 4);
  EXPECT_EQ(init_ints(g, sl.input(1)), (V{1, 1}));
  EXPECT_EQ(init_ints(g, sl.input(2)), (V{7, 7}));
  EXPECT_EQ(init_ints(g, sl.input(3)), (V{2, 3}));
  EXPECT_EQ(sl.attribute_size(), 0);

  const auto& pad = find(g, "pad");
  ASSERT_EQ(pad.input_size(), 3);
  EXPECT_EQ(init_ints(g, pad.input(1)), (V{0, 0, 1, 1, 0, 0, 1, 1}));
  const auto& value = init(g, pad.input(2));
  EXPECT_EQ(value.dims_size(), 0);  // a scalar, typed like the data
  EXPECT_EQ(value.data_type(), onnx::TensorProto::FLOAT);
  EXPECT_EQ(value.float_data(0), 0.5f);
  EXPECT_FALSE(has_attr(pad, "value"));

  const auto& clip = find(g, "clip");
  ASSERT_EQ(clip.input_size(), 3);
  EXPECT_EQ(init(g, clip.input(1)).float_data(0), 0.0f);
  EXPECT_EQ(init(g, clip.input(2)).float_data(0), 6.0f);
  EXPECT_EQ(clip.attribute_size(), 0);

  const auto& resize = find(g, "upsample");
  EXPECT_EQ(resize.op_type(), "Resize");
  EXPECT_EQ((std::vector<std::string>(resize.input().begin(), resize.input().end())),
            (std::vector<std::string>{"c", "", "up_scales"}));
  EXPECT_TRUE(has_attr(resize, "coordinate_transformation_mode"));
  EXPECT_TRUE(has_attr(resize, "nearest_mode"));

  EXPECT_EQ(init_ints(g, find(g, "reducesum").input(1)), (V{1}));
  EXPECT_EQ(init_ints(g, find(g, "squeeze").input(1)), (V{1}));
  EXPECT_EQ(init_ints(g, find(g, "unsqueeze").input(1)), (V{0}));
  EXPECT_EQ(init_ints(g, find(g, "split").input(1)), (V{8, 8}));
  EXPECT_FALSE(has_attr(find(g, "split"), "split"));
  EXPECT_TRUE(has_attr(find(g, "split"), "axis"));

  // Softmax(axis=1) of a rank-4 value: Shape + Flatten(1) + Softmax(-1) + Reshape, in that order.
  std::vector<std::string> ops;
  for (const auto& n : g.node()) ops.push_back(n.op_type());
  const auto at = std::find(ops.begin(), ops.end(), "Softmax") - ops.begin();
  ASSERT_GE(at, 2);
  EXPECT_EQ(ops[at - 2], "Shape");
  EXPECT_EQ(ops[at - 1], "Flatten");
  EXPECT_EQ(ops[at + 1], "Reshape");
  EXPECT_EQ(g.node(at + 1).output(0), "sm");
  EXPECT_EQ(find(g, "logsoftmax").attribute(0).i(), 3);  // rank known, last axis: explicit, unchanged

  EXPECT_FALSE(has_attr(find(g, "dropout"), "ratio"));
  EXPECT_EQ(init_ints(g, find(g, "topk").input(1)), (V{3}));

  std::set<std::string> converted(up.converted.begin(), up.converted.end());
  for (const char* c : {"Slice x1", "Pad x1", "Clip x1", "Upsample x1", "ReduceSum x1", "Squeeze x1",
                        "Unsqueeze x1", "Split x1", "Softmax x1", "Dropout x1", "TopK x1"})
    EXPECT_TRUE(converted.count(c)) << c;
  EXPECT_EQ(converted.size(), 11u);  // not LogSoftmax: it was right as it was
  if (!have_checker()) GTEST_SKIP() << "/usr/bin/python3 has no onnx module (apt install python3-onnx)";
  check(original, m, "vision9");
}

// Opset 11 with an If whose branches Unsqueeze an outer value: the axes initializer goes into the branch.
TEST(OnnxOpset, Opset11SubgraphsTo13) {
  auto m = model(11, 6);
  auto& g = *m.mutable_graph();
  value(g.mutable_input(), "x", onnx::TensorProto::FLOAT, {2, 4});
  value(g.mutable_input(), "cond", onnx::TensorProto::BOOL, {});
  auto& split = node(g, "Split", {"x"}, {"x0", "x1"}, "split");  // no split attribute: equal parts
  int1(split, "axis", 1);
  node(g, "ReduceSum", {"x0"}, {"all"}, "reduce_all");  // no axes: every axis
  auto& iff = node(g, "If", {"cond"}, {"y"}, "if");
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto* a = add_attr(iff, branch, onnx::AttributeProto::GRAPH);
    auto& b = *a->mutable_g();
    b.set_name(branch);
    const std::string p = branch[0] == 't' ? "then" : "else";
    node(b, "Neg", {"x1"}, {p + "_neg"}, p + "_neg");
    ints(node(b, "Unsqueeze", {p + "_neg"}, {p + "_out"}, p + "_unsqueeze"), "axes", {0});
    value(b.mutable_output(), p + "_out", onnx::TensorProto::FLOAT, {1, 2, 2});
  }
  node(g, "Squeeze", {"y"}, {"z"}, "squeeze");  // no axes: all the 1s
  value(g.mutable_output(), "z", onnx::TensorProto::FLOAT, {2, 2});
  value(g.mutable_output(), "all", onnx::TensorProto::FLOAT, {1, 1});
  const auto original = m;
  const auto up = upgrade(m);
  EXPECT_EQ(up.from, 11);
  for (const auto& a : find(m.graph(), "if").attribute()) {
    const auto& b = a.g();
    const auto& u = find(b, b.name().substr(0, 4) + "_unsqueeze");
    ASSERT_EQ(u.input_size(), 2);
    EXPECT_EQ(init_ints(b, u.input(1)), (V{0}));  // in the branch's own graph
    EXPECT_EQ(u.attribute_size(), 0);
  }
  EXPECT_EQ(m.graph().initializer_size(), 0);  // nothing for the attribute-less Split/ReduceSum/Squeeze
  EXPECT_EQ(find(m.graph(), "split").input_size(), 1);
  EXPECT_EQ(find(m.graph(), "squeeze").input_size(), 1);
  EXPECT_EQ(up.converted, (std::vector<std::string>{"Unsqueeze x2"}));
  if (!have_checker()) GTEST_SKIP() << "/usr/bin/python3 has no onnx module";
  check(original, m, "subgraphs11");
}

TEST(OnnxOpset, Opset10ResizeScatterClipFloat16) {
  auto m = model(10, 5);
  auto& g = *m.mutable_graph();
  value(g.mutable_input(), "x", onnx::TensorProto::FLOAT, {1, 1, 2, 2});
  value(g.mutable_input(), "h", onnx::TensorProto::FLOAT16, {4});
  floats_init(g, "scales", {1, 1, 2, 2});
  node(g, "Resize", {"x", "scales"}, {"r"}, "resize");  // Resize-10: nearest, asymmetric
  auto* idx = g.add_initializer();
  idx->set_name("idx"), idx->set_data_type(onnx::TensorProto::INT64), idx->add_dims(1), idx->add_dims(1);
  idx->add_int64_data(1);
  floats_init(g, "upd", {5});
  g.mutable_initializer(2)->clear_dims(), g.mutable_initializer(2)->add_dims(1),
      g.mutable_initializer(2)->add_dims(1);
  node(g, "Flatten", {"r"}, {"f"}, "flatten");
  int1(node(g, "Scatter", {"f", "idx", "upd"}, {"sc"}, "scatter"), "axis", 1);
  auto& clip = node(g, "Clip", {"h"}, {"hc"}, "clip16");
  float1(clip, "max", 1.5f);  // min at its default: absent
  value(g.mutable_output(), "sc", onnx::TensorProto::FLOAT, {1, 16});
  value(g.mutable_output(), "hc", onnx::TensorProto::FLOAT16, {4});
  const auto original = m;
  upgrade(m);
  const auto& r = find(m.graph(), "resize");
  EXPECT_EQ((std::vector<std::string>(r.input().begin(), r.input().end())),
            (std::vector<std::string>{"x", "", "scales"}));
  EXPECT_EQ(find(m.graph(), "scatter").op_type(), "ScatterElements");
  const auto& c = find(m.graph(), "clip16");
  ASSERT_EQ(c.input_size(), 3);
  EXPECT_EQ(c.input(1), "");
  const auto& hi = init(m.graph(), c.input(2));
  EXPECT_EQ(hi.data_type(), onnx::TensorProto::FLOAT16);
  EXPECT_EQ(hi.int32_data(0), 0x3E00);  // 1.5 in IEEE half
  if (!have_checker()) GTEST_SKIP() << "/usr/bin/python3 has no onnx module";
  check(original, m, "resize10");
}

TEST(OnnxOpset, RefusalsNameEveryOpAndLeaveTheModel) {
  auto m = model(9);
  auto& g = *m.mutable_graph();
  value(g.mutable_input(), "x", onnx::TensorProto::FLOAT, {1, 3, 8, 8});
  floats_init(g, "half", {1, 1, 0.5f, 0.5f});
  node(g, "Upsample", {"x", "half"}, {"u1"}, "n1");
  node(g, "Upsample", {"u1", "half"}, {"u2"}, "n2");
  auto& clip = node(g, "Clip", {"unknown"}, {"c"}, "clip_untyped");
  float1(clip, "min", 0.0f);
  node(g, "Squeeze", {"c"}, {"q"}, "");  // converted only if nothing is refused
  const std::string before = m.SerializeAsString();
  try {
    upgrade(m);
    FAIL() << "no refusal";
  } catch (const qk::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot raise the opset from 9 to 13"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Upsample (2 nodes: n1, n2)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Clip (1 node: clip_untyped)"), std::string::npos) << msg;
  }
  EXPECT_EQ(m.SerializeAsString(), before);
}

TEST(OnnxOpset, RefusesGroupNormalizationTo21AndBadTargets) {
  auto bn = model(8, 3);
  int1(node(*bn.mutable_graph(), "BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"}, "bn0"), "spatial",
       0);
  try {
    upgrade(bn);
    FAIL() << "no refusal";
  } catch (const qk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("BatchNormalization (1 node: bn0) has spatial=0"), std::string::npos)
        << e.what();
  }
  auto m = model(18, 8);
  node(*m.mutable_graph(), "GroupNormalization", {"x", "s", "b"}, {"y"}, "gn");
  EXPECT_THROW(upgrade(m, 21), qk::Error);
  auto low = model(6, 3);
  EXPECT_THROW(upgrade(low), qk::Error);
  auto m2 = model(9);
  EXPECT_THROW(upgrade(m2, 22), qk::Error);
}

TEST(OnnxOpset, AtOrAboveTargetUnchanged) {
  auto m = model(14, 7);
  ints(node(*m.mutable_graph(), "Squeeze", {"x"}, {"y"}, "sq"), "axes", {0});  // (invalid at 14: untouched)
  const std::string before = m.SerializeAsString();
  const auto up = upgrade(m);
  EXPECT_EQ(up.from, 14);
  EXPECT_EQ(up.to, 14);
  EXPECT_TRUE(up.converted.empty());
  EXPECT_EQ(m.SerializeAsString(), before);
}

TEST(OnnxOpset, OtherDomainsLeftAlone) {
  auto m = model(11, 6);
  auto* ms = m.add_opset_import();
  ms->set_domain("com.microsoft"), ms->set_version(1);
  ints(node(*m.mutable_graph(), "Squeeze", {"x"}, {"y"}, "ms_sq", "com.microsoft"), "axes", {0});
  upgrade(m);
  const auto& n = find(m.graph(), "ms_sq");
  EXPECT_EQ(n.input_size(), 1);
  EXPECT_TRUE(has_attr(n, "axes"));
  EXPECT_EQ(m.opset_import(1).version(), 1);
}

TEST(OnnxOpset, Opset17To21) {
  auto m = model(17, 8);
  auto& g = *m.mutable_graph();
  ints(node(g, "ReduceMean", {"x"}, {"m"}, "mean"), "axes", {-1});
  node(g, "Split", {"m"}, {"a", "b", "c"}, "split3");
  str(node(g, "GridSample", {"x", "grid"}, {"gs"}, "grid"), "mode", "bicubic");
  node(g, "DFT", {"x"}, {"f"}, "dft");
  const auto up = upgrade(m, 21);
  EXPECT_EQ(m.ir_version(), 10);
  EXPECT_EQ(init_ints(g, find(g, "mean").input(1)), (V{-1}));
  const auto& s = find(g, "split3");
  ASSERT_TRUE(has_attr(s, "num_outputs"));
  EXPECT_EQ(s.attribute(0).i(), 3);
  EXPECT_EQ(find(g, "grid").attribute(0).s(), "cubic");
  const auto& dft = find(g, "dft");
  ASSERT_EQ(dft.input_size(), 3);
  EXPECT_EQ(dft.input(1), "");
  EXPECT_EQ(init(g, dft.input(2)).int64_data(0), 1);  // 17's default axis, now an input
  EXPECT_EQ(init(g, dft.input(2)).dims_size(), 0);
}

}  // namespace
