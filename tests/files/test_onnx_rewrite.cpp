// quantize_onnx on the awkward models a review found: a bias read from an outer scope by an If branch, a
// Gemm's 2-D bias, weights that are also graph inputs, float16 weights, an initializer shadowed in a
// subgraph, external data in Constant nodes and beside the output, and inspect --reference on a
// DequantizeLinear whose parameters do not fit its codes. Every written model must read back through the
// model reader's checks (single assignment across scopes included).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "../io/onnx_model.hpp"
#include "onnx_test_models.hpp"
#include "quantkit/calib/presets.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/files/calibration_file.hpp"
#include "quantkit/files/onnx_quant.hpp"
#include "quantkit/io/npy.hpp"

namespace {

namespace fs = std::filesystem;
using namespace qk::onnxfile;

using qk::test::add_node;
using qk::test::add_value;
using TempDir = qk::test::OnnxTempDir;

std::vector<float> values(std::size_t n, unsigned seed) { return qk::test::normal_values(n, seed, 0.5f); }

onnx::TensorProto floats(const std::string& name, const std::vector<std::int64_t>& shape, unsigned seed) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return qk::test::float_tensor(name, shape, values(static_cast<std::size_t>(n), seed));
}

onnx::ModelProto model(std::int64_t ir = 7) { return qk::test::empty_model(ir); }

void save(const onnx::ModelProto& m, const std::string& path) { qk::test::save_model_file(m, path); }

// calib.json (generic preset: uint8 affine per tensor) over the given values, each a batch of random data.
std::string calibrate(const TempDir& dir,
                      const std::vector<std::pair<std::string, std::vector<std::int64_t>>>& vals) {
  std::vector<std::string> inputs;
  unsigned seed = 100;
  for (const auto& [name, shape] : vals) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    const std::vector<float> v = values(static_cast<std::size_t>(n), seed++);
    const std::string file = dir / (std::to_string(seed) + ".npy");
    qk::io::write_npy(file, qk::io::DType::kFloat32, shape, std::as_bytes(std::span<const float>(v)));
    inputs.push_back(name + "=" + file);
  }
  qk::ObserverConfig config;
  config.spec = qk::activation_spec_for_preset("generic");
  const qk::ObserverMap observed = qk::calibrate_files(inputs, config);
  const std::string path = dir / "calib.json";
  qk::write_calibration(path, observed, qk::calibration_results(observed), {"generic", false});
  return path;
}

const onnx::TensorProto* initializer(const onnx::GraphProto& g, const std::string& name) {
  return qk::test::find_initializer(g, name);
}

bool kept(const qk::OnnxQuantReport& r, const std::string& name) {
  for (const auto& k : r.kept_float)
    if (k.rfind(name + ":", 0) == 0) return true;
  return false;
}

TEST(OnnxRewrite, StaticBiasReadFromAnOuterScope) {
  // x -> Relu -> r; If(cond) { Conv(r, W, B) } else { Identity(r) }, W and B in the main graph: the
  // bias rewrite adds to the main graph what a branch reads (ASan: no iterator into the main graph's
  // nodes may be live then).
  onnx::ModelProto m = model();
  auto& g = *m.mutable_graph();
  add_value(g.mutable_input(), "x");
  add_value(g.mutable_input(), "cond", kBool);
  add_value(g.mutable_output(), "y");
  *g.add_initializer() = floats("W", {8, 4, 3, 3}, 1);
  *g.add_initializer() = floats("B", {8}, 2);
  add_node(g, "Relu", {"x"}, {"r"});
  add_node(g, "Identity", {"r"}, {"r2"});
  auto& iff = add_node(g, "If", {"cond"}, {"y"});
  qk::test::add_branches(iff, [](onnx::GraphProto& b, const std::string& branch) {
    add_value(b.mutable_output(), branch + "_y");
    if (branch == "then_branch")
      add_node(b, "Conv", {"r", "W", "B"}, {"then_branch_y"});
    else
      add_node(b, "Identity", {"r2"}, {"else_branch_y"});
  });
  TempDir dir;
  save(m, dir / "m.onnx");
  qk::OnnxQuantOptions o;
  o.mode = qk::OnnxQuantMode::kStatic;
  o.calib_path = calibrate(dir, {{"r", {1, 4, 6, 6}}, {"then_branch_y", {1, 8, 4, 4}}});
  const qk::OnnxQuantReport r = qk::quantize_onnx(dir / "m.onnx", dir / "q.onnx", o);
  EXPECT_EQ(r.int32_biases, 1);
  EXPECT_FALSE(kept(r, "B"));
  const LoadedModel q = load_model(dir / "q.onnx");
  ASSERT_NE(initializer(q.model.graph(), "B_quantized"), nullptr);
  EXPECT_EQ(initializer(q.model.graph(), "B_quantized")->data_type(), kInt32);
}

TEST(OnnxRewrite, GemmTwoDimensionalBiasAndGraphInputBiasStayFloat) {
  // Gemm(x, W, C [4, 8]) and Conv(x2, W2, B2) where B2 is also a graph input (IR 4+: overridable).
  onnx::ModelProto m = model();
  auto& g = *m.mutable_graph();
  add_value(g.mutable_input(), "x");
  add_value(g.mutable_input(), "x2");
  add_value(g.mutable_input(), "B2");
  add_value(g.mutable_output(), "y");
  add_value(g.mutable_output(), "y2");
  *g.add_initializer() = floats("W", {16, 8}, 3);
  *g.add_initializer() = floats("C", {4, 8}, 4);
  *g.add_initializer() = floats("W2", {8, 4, 3, 3}, 5);
  *g.add_initializer() = floats("B2", {8}, 6);
  add_node(g, "Gemm", {"x", "W", "C"}, {"y"});
  add_node(g, "Conv", {"x2", "W2", "B2"}, {"y2"});
  TempDir dir;
  save(m, dir / "m.onnx");
  qk::OnnxQuantOptions o;
  o.mode = qk::OnnxQuantMode::kStatic;
  o.weight_spec.granularity = qk::Granularity::kPerTensor;
  o.calib_path = calibrate(dir, {{"x", {4, 16}}, {"y", {4, 8}}, {"x2", {1, 4, 6, 6}}, {"y2", {1, 8, 4, 4}}});
  const qk::OnnxQuantReport r = qk::quantize_onnx(dir / "m.onnx", dir / "q.onnx", o);
  EXPECT_EQ(r.int32_biases, 0);
  const LoadedModel q = load_model(dir / "q.onnx");
  EXPECT_EQ(initializer(q.model.graph(), "C")->data_type(), kFloat);
  EXPECT_EQ(initializer(q.model.graph(), "B2")->data_type(), kFloat);
  bool b2_input = false;
  for (const auto& i : q.model.graph().input()) b2_input = b2_input || i.name() == "B2";
  EXPECT_TRUE(b2_input);  // the model's interface is unchanged
}

TEST(OnnxRewrite, WeightsThatAreGraphInputsOrFloat16StayAsTheyAre) {
  onnx::ModelProto m = model();
  auto& g = *m.mutable_graph();
  add_value(g.mutable_input(), "x");
  add_value(g.mutable_input(), "W");  // overridable default
  add_value(g.mutable_input(), "h", kFloat16);
  add_value(g.mutable_output(), "y");
  add_value(g.mutable_output(), "z");
  *g.add_initializer() = floats("W", {8, 4, 3, 3}, 7);
  std::string half(64 * 32 * 2, '\0');
  *g.add_initializer() = make_tensor("H", kFloat16, {64, 32}, half);
  add_node(g, "Conv", {"x", "W"}, {"y"});
  add_node(g, "MatMul", {"h", "H"}, {"z"});
  TempDir dir;
  save(m, dir / "m.onnx");
  const qk::OnnxQuantReport r = qk::quantize_onnx(dir / "m.onnx", dir / "q.onnx", {});
  EXPECT_TRUE(r.weights.empty());
  EXPECT_TRUE(kept(r, "W"));
  EXPECT_TRUE(kept(r, "H"));
  load_model(dir / "q.onnx");
}

TEST(OnnxRewrite, ShadowedSubgraphInitializerGetsAFreshName) {
  // Conv(x, W) in the main graph, and an If branch with its own initializer W: two DequantizeLinear
  // writing "W" would break single assignment.
  onnx::ModelProto m = model();
  auto& g = *m.mutable_graph();
  add_value(g.mutable_input(), "x");
  add_value(g.mutable_input(), "cond", kBool);
  add_value(g.mutable_output(), "y");
  add_value(g.mutable_output(), "z");
  *g.add_initializer() = floats("W", {8, 4, 3, 3}, 8);
  add_node(g, "Conv", {"x", "W"}, {"y"});
  auto& iff = add_node(g, "If", {"cond"}, {"z"});
  qk::test::add_branches(iff, [](onnx::GraphProto& b, const std::string& branch) {
    *b.add_initializer() = floats("W", {8, 4, 3, 3}, 9);
    add_value(b.mutable_output(), branch + "_z");
    add_node(b, "Conv", {"x", "W"}, {branch + "_z"});
  });
  TempDir dir;
  save(m, dir / "m.onnx");
  const qk::OnnxQuantReport r = qk::quantize_onnx(dir / "m.onnx", dir / "q.onnx", {});
  EXPECT_EQ(r.weights.size(), 3u);
  const LoadedModel q = load_model(dir / "q.onnx");  // single assignment across scopes is checked
  for (const auto& n : q.model.graph().node()) {
    if (n.op_type() != "If") continue;
    for (const auto& a : n.attribute())  // each branch's Conv reads its own DequantizeLinear's result
      for (const auto& bn : a.g().node())
        if (bn.op_type() == "Conv") EXPECT_EQ(bn.input(1), a.g().node(0).output(0));
  }
}

TEST(OnnxRewrite, ExternalDataOfTheInputIsNeverOverwrittenAndConstantsComeInline) {
  TempDir dir;
  fs::create_directories(dir / "out");
  // A Constant whose tensor lives in c.bin, and an initializer in q.onnx.data (the output's data name).
  onnx::ModelProto m = model();
  auto& g = *m.mutable_graph();
  add_value(g.mutable_input(), "x");
  add_value(g.mutable_output(), "y");
  const std::vector<float> w = values(8 * 4 * 9, 10);
  std::ofstream(dir / "c.bin", std::ios::binary).write(reinterpret_cast<const char*>(w.data()), w.size() * 4);
  std::ofstream(dir / "q.onnx.data", std::ios::binary)
      .write(reinterpret_cast<const char*>(w.data()), w.size() * 4);
  auto external = [](onnx::TensorProto& t, const std::string& file) {
    t.clear_raw_data();
    t.set_data_location(onnx::TensorProto::EXTERNAL);
    auto* kv = t.add_external_data();
    kv->set_key("location");
    kv->set_value(file);
  };
  auto& c = add_node(g, "Constant", {}, {"W"});
  auto* a = c.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = floats("", {8, 4, 3, 3}, 0);
  external(*a->mutable_t(), "c.bin");
  *g.add_initializer() = floats("W2", {8, 4, 3, 3}, 0);
  external(*g.mutable_initializer(0), "q.onnx.data");
  add_node(g, "Conv", {"x", "W"}, {"c"});
  add_node(g, "Conv", {"c", "W2"}, {"y"});
  save(m, dir / "m.onnx");
  std::string message;
  try {
    qk::quantize_onnx(dir / "m.onnx", dir / "q.onnx", {});
  } catch (const qk::Error& e) {
    message = e.what();
  }
  EXPECT_FALSE(message.empty());
  EXPECT_EQ(fs::file_size(dir / "q.onnx.data"), w.size() * 4);  // the input's data is intact
  // Elsewhere, the Constant's external tensor is written inline (c.bin is not beside the output).
  qk::OnnxQuantOptions keep_small;
  keep_small.min_elements = 1 << 20;  // nothing quantized: the Constant itself must travel
  qk::quantize_onnx(dir / "m.onnx", dir / "out/q.onnx", keep_small);
  const LoadedModel q = load_model(dir / "out/q.onnx");
  EXPECT_FALSE(is_external(q.model.graph().node(0).attribute(0).t()));
  EXPECT_FALSE(fs::exists(dir / "out/q.onnx.data"));
}

TEST(OnnxRewrite, InspectRefusesADequantizeLinearWhoseParametersDoNotFit) {
  onnx::ModelProto m = model();
  auto& g = *m.mutable_graph();
  add_value(g.mutable_input(), "x");
  add_value(g.mutable_output(), "y");
  *g.add_initializer() = make_tensor("Wq", kInt8, {64, 9}, std::string(64 * 9, '\1'));
  *g.add_initializer() = floats("Ws", {2}, 11);  // 2 scales for 64 channels
  auto& dq = add_node(g, "DequantizeLinear", {"Wq", "Ws"}, {"W"});
  auto* axis = dq.add_attribute();
  axis->set_name("axis");
  axis->set_type(onnx::AttributeProto::INT);
  axis->set_i(0);
  add_node(g, "MatMul", {"x", "W"}, {"y"});
  onnx::ModelProto ref = model();
  auto& rg = *ref.mutable_graph();
  add_value(rg.mutable_input(), "x");
  add_value(rg.mutable_output(), "y");
  *rg.add_initializer() = floats("W", {64, 9}, 12);
  add_node(rg, "MatMul", {"x", "W"}, {"y"});
  TempDir dir;
  save(m, dir / "bad.onnx");
  save(ref, dir / "ref.onnx");
  EXPECT_THROW(qk::inspect_onnx(dir / "bad.onnx", dir / "ref.onnx"), qk::Error);
  axis->set_i(7);
  save(m, dir / "axis.onnx");
  EXPECT_THROW(qk::inspect_onnx(dir / "axis.onnx", dir / "ref.onnx"), qk::Error);
}

}  // namespace
