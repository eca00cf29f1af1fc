// The ONNX model layer (src/files/onnx_model.cpp) and quantize_onnx on models built in memory: a weight's
// per-channel scales and codes equal `qtool quantize W.npy`'s for the same tensor and axis; Constant and
// subgraph weights; external data both ways; and every kind of bad input refused with a message that names
// the file, leaving no output. ONNX Runtime and onnx.checker run on written models in tests/onnx.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "../io/onnx_model.hpp"
#include "onnx_test_models.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/files/onnx_quant.hpp"
#include "quantkit/files/quantize_file.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/qfile.hpp"

namespace {

namespace fs = std::filesystem;
using namespace qk::onnxfile;

using qk::test::add_node;
using qk::test::add_value;
using qk::test::float_tensor;
using TempDir = qk::test::OnnxTempDir;

std::vector<float> random_weights(std::size_t n, unsigned seed) {
  std::vector<float> v = qk::test::normal_values(n, seed, 0.1f);
  v[n / 3] = 3.0f;  // an outlier in one channel: per-channel scales must differ
  return v;
}

// x [1, 4, 8, 8] -> Conv(conv.w [8, 4, 3, 3]) -> Flatten -> MatMul(mm.w [288, 24]) -> Gemm(gemm.w [24, 16]) -> y
onnx::ModelProto small_model() {
  onnx::ModelProto m = qk::test::empty_model();
  auto& g = *m.mutable_graph();
  add_value(g.mutable_input(), "x");
  add_value(g.mutable_output(), "y");
  *g.add_initializer() = float_tensor("conv.w", {8, 4, 3, 3}, random_weights(8 * 4 * 9, 1));
  *g.add_initializer() = float_tensor("mm.w", {288, 24}, random_weights(288 * 24, 2));
  *g.add_initializer() = float_tensor("gemm.w", {24, 16}, random_weights(24 * 16, 3));
  add_node(g, "Conv", {"x", "conv.w"}, {"c"});
  add_node(g, "Flatten", {"c"}, {"f"});
  add_node(g, "MatMul", {"f", "mm.w"}, {"m"});
  add_node(g, "Gemm", {"m", "gemm.w"}, {"y"});
  return m;
}

void save(const onnx::ModelProto& m, const std::string& path) { qk::test::save_model_file(m, path); }

const onnx::TensorProto* initializer(const onnx::GraphProto& g, const std::string& name) {
  return qk::test::find_initializer(g, name);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const qk::Error& e) {
    return e.what();
  }
  return "";
}

TEST(OnnxQuantize, PerChannelScalesAndCodesEqualTheNpyPath) {
  TempDir dir;
  save(small_model(), dir / "m.onnx");
  const qk::OnnxQuantReport r = qk::quantize_onnx(dir / "m.onnx", dir / "q.onnx", {});
  ASSERT_EQ(r.weights.size(), 3u);
  const LoadedModel q = load_model(dir / "q.onnx");
  const LoadedModel f = load_model(dir / "m.onnx");
  // Conv: output channels on axis 0; MatMul B [K, N] and Gemm B (transB = 0): axis 1.
  for (const auto& [name, axis] : std::vector<std::pair<std::string, int>>{{"conv.w", 0}, {"mm.w", 1}, {"gemm.w", 1}}) {
    SCOPED_TRACE(name);
    const onnx::TensorProto* w = initializer(f.model.graph(), name);
    const std::vector<float> x = read_floats(*w, f.dir);
    qk::io::write_npy(dir / (name + ".npy"), qk::io::DType::kFloat32, dims(*w),
                      std::as_bytes(std::span<const float>(x)));
    qk::FileQuantOptions o;
    o.spec = qk::default_weight_spec(2);
    o.spec.axis = axis;
    qk::quantize_file(dir / (name + ".npy"), dir / (name + ".npz"), o);
    const qk::io::QuantizedFile npz = qk::io::read_quantized(dir / (name + ".npz"));
    const std::vector<float> scales = read_floats(*initializer(q.model.graph(), name + "_scale"), q.dir);
    EXPECT_EQ(scales, npz.params.scale);
    const std::string codes = read_raw(*initializer(q.model.graph(), name + "_quantized"), q.dir);
    ASSERT_EQ(codes.size(), npz.q.raw().size());
    EXPECT_EQ(0, std::memcmp(codes.data(), npz.q.raw().data(), codes.size()));
    // The DequantizeLinear that gives the weight back says the same axis.
    bool found = false;
    for (const auto& n : q.model.graph().node())
      if (n.op_type() == "DequantizeLinear" && n.output(0) == name) {
        EXPECT_EQ(int_attribute(n, "axis", -1), axis);
        found = true;
      }
    EXPECT_TRUE(found);
  }
}

TEST(OnnxQuantize, ConstantAndSubgraphWeights) {
  // if(cond) { Conv(x, then.w) } else { Conv(x, else.w as a Constant node) }
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto& g = *m.mutable_graph();
  g.set_name("main");
  add_value(g.mutable_input(), "x");
  auto* cond = g.add_input();
  cond->set_name("cond");
  cond->mutable_type()->mutable_tensor_type()->set_elem_type(kBool);
  add_value(g.mutable_output(), "y");
  auto& iff = add_node(g, "If", {"cond"}, {"y"});
  auto branch = [&](const std::string& attr, bool constant) {
    auto* a = iff.add_attribute();
    a->set_name(attr);
    a->set_type(onnx::AttributeProto::GRAPH);
    auto& b = *a->mutable_g();
    b.set_name(attr);
    add_value(b.mutable_output(), attr + "_y");
    const std::string w = attr + ".w";
    if (constant) {
      auto& c = add_node(b, "Constant", {}, {w});
      auto* v = c.add_attribute();
      v->set_name("value");
      v->set_type(onnx::AttributeProto::TENSOR);
      *v->mutable_t() = float_tensor("", {8, 4, 3, 3}, random_weights(288, 7));
    } else {
      *b.add_initializer() = float_tensor(w, {8, 4, 3, 3}, random_weights(288, 8));
    }
    add_node(b, "Conv", {"x", w}, {attr + "_y"});
  };
  branch("then_branch", false);
  branch("else_branch", true);
  TempDir dir;
  save(m, dir / "if.onnx");
  const qk::OnnxQuantReport r = qk::quantize_onnx(dir / "if.onnx", dir / "q.onnx", {});
  ASSERT_EQ(r.weights.size(), 2u);
  const LoadedModel q = load_model(dir / "q.onnx");
  for (const auto& a : q.model.graph().node(0).attribute()) {
    SCOPED_TRACE(a.name());
    EXPECT_EQ(a.g().node(0).op_type(), "DequantizeLinear");  // sorted before the Conv that reads it
    EXPECT_EQ(a.g().node(0).output(0), a.name() + ".w");
    ASSERT_NE(initializer(a.g(), a.name() + ".w_quantized"), nullptr);
    EXPECT_EQ(initializer(a.g(), a.name() + ".w_quantized")->data_type(), kInt8);
  }
}

TEST(OnnxQuantize, ExternalDataInAndOut) {
  TempDir dir;
  save(small_model(), dir / "m.onnx");
  qk::OnnxQuantOptions o;
  o.external = qk::OnnxQuantOptions::External::kAlways;
  qk::quantize_onnx(dir / "m.onnx", dir / "ext.onnx", o);
  ASSERT_TRUE(fs::exists(dir / "ext.onnx.data"));
  const LoadedModel ext = load_model(dir / "ext.onnx");
  EXPECT_TRUE(is_external(*initializer(ext.model.graph(), "mm.w_quantized")));
  // An external input written inline gives the same tensors as the inline path.
  qk::quantize_onnx(dir / "m.onnx", dir / "inline.onnx", {});
  o.external = qk::OnnxQuantOptions::External::kNever;
  fs::create_directories(dir / "sub");
  // Re-quantizing an already-quantized model finds no float weights left to quantize.
  const qk::OnnxQuantReport again = qk::quantize_onnx(dir / "ext.onnx", dir / "sub/again.onnx", o);
  EXPECT_TRUE(again.weights.empty());
  const LoadedModel back = load_model(dir / "sub/again.onnx");
  const LoadedModel in = load_model(dir / "inline.onnx");
  EXPECT_FALSE(is_external(*initializer(back.model.graph(), "mm.w_quantized")));
  EXPECT_EQ(read_raw(*initializer(back.model.graph(), "mm.w_quantized"), back.dir),
            read_raw(*initializer(in.model.graph(), "mm.w_quantized"), in.dir));
}

TEST(OnnxModel, AutoExternalDataWhenTheModelPassesTheInlineLimit) {
  // The 2 GB switch, with the limit lowered to a few KiB: large tensors move to OUT.onnx.data, small ones
  // and the model stay; under the limit nothing moves and no data file is made.
  TempDir dir;
  onnx::ModelProto m = small_model();
  SaveOptions over;
  over.inline_limit = 4096;
  save_model(m, dir / "over.onnx", dir.path.string(), over);
  const LoadedModel a = load_model(dir / "over.onnx");
  EXPECT_TRUE(is_external(*initializer(a.model.graph(), "mm.w")));
  EXPECT_TRUE(fs::exists(dir / "over.onnx.data"));
  EXPECT_EQ(read_floats(*initializer(a.model.graph(), "mm.w"), a.dir),
            read_floats(*initializer(small_model().graph(), "mm.w"), ""));
  onnx::ModelProto n = small_model();
  save_model(n, dir / "under.onnx", dir.path.string(), {});
  EXPECT_FALSE(fs::exists(dir / "under.onnx.data"));
  EXPECT_FALSE(is_external(*initializer(load_model(dir / "under.onnx").model.graph(), "mm.w")));
}

// Each bad model: load_model and quantize_onnx refuse it naming the file, and nothing is written.
void expect_refused(const std::string& path, const std::string& problem) {
  const std::string e = error_of([&] { load_model(path); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find(problem), std::string::npos) << e;
  const std::string out = path + ".q.onnx";
  EXPECT_FALSE(error_of([&] { qk::quantize_onnx(path, out, {}); }).empty());
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(error_of([&] { qk::inspect_onnx(path); }).empty());
}

TEST(OnnxModel, BadInputsAreRefusedNamingTheProblem) {
  TempDir dir;
  {  // truncated protobuf
    std::string bytes;
    small_model().SerializeToString(&bytes);
    std::ofstream(dir / "truncated.onnx", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    SCOPED_TRACE("truncated");
    expect_refused(dir / "truncated.onnx", "not an ONNX model");
  }
  {  // raw_data size disagrees with the shape
    onnx::ModelProto m = small_model();
    m.mutable_graph()->mutable_initializer(1)->mutable_raw_data()->resize(100);
    save(m, dir / "rawsize.onnx");
    SCOPED_TRACE("raw size");
    expect_refused(dir / "rawsize.onnx", "100 bytes of raw_data");
  }
  {  // unknown data type
    onnx::ModelProto m = small_model();
    m.mutable_graph()->mutable_initializer(0)->set_data_type(99);
    save(m, dir / "dtype.onnx");
    SCOPED_TRACE("dtype");
    expect_refused(dir / "dtype.onnx", "unknown data type (99)");
  }
  {  // external data file missing, and outside the model's folder
    onnx::ModelProto m = small_model();
    auto* t = m.mutable_graph()->mutable_initializer(2);
    t->clear_raw_data();
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* kv = t->add_external_data();
    kv->set_key("location");
    kv->set_value("weights.bin");
    save(m, dir / "missing.onnx");
    SCOPED_TRACE("missing external");
    expect_refused(dir / "missing.onnx", "external data file 'weights.bin' is missing");
    kv->set_value("../../etc/passwd");
    save(m, dir / "escape.onnx");
    expect_refused(dir / "escape.onnx", "outside the model's folder");
    kv->set_value("short.bin");
    std::ofstream(dir / "short.bin") << "12345";
    save(m, dir / "short.onnx");
    expect_refused(dir / "short.onnx", "runs past the end");
  }
  {  // a cycle: a = Relu(b), b = Relu(a)
    onnx::ModelProto m = small_model();
    auto& g = *m.mutable_graph();
    add_node(g, "Relu", {"b"}, {"a"});
    add_node(g, "Relu", {"a"}, {"b"});
    save(m, dir / "cycle.onnx");
    SCOPED_TRACE("cycle");
    expect_refused(dir / "cycle.onnx", "has a cycle through node");
  }
  {  // a node reading a value nothing defines
    onnx::ModelProto m = small_model();
    m.mutable_graph()->mutable_node(1)->set_input(0, "nowhere");
    save(m, dir / "undefined.onnx");
    SCOPED_TRACE("undefined");
    expect_refused(dir / "undefined.onnx", "reads 'nowhere', which nothing defines");
  }
  {  // not a model at all, and an empty file
    std::ofstream(dir / "text.onnx") << "this is not a protobuf\n";
    std::ofstream(dir / "empty.onnx");
    SCOPED_TRACE("text");
    expect_refused(dir / "text.onnx", "not an ONNX model");
    expect_refused(dir / "empty.onnx", "not an ONNX model");
  }
}

TEST(OnnxQuantize, NeverOverwritesItsInputAndKeepsAnExistingOutputOnFailure) {
  TempDir dir;
  save(small_model(), dir / "m.onnx");
  EXPECT_FALSE(error_of([&] { qk::quantize_onnx(dir / "m.onnx", dir / "m.onnx", {}); }).empty());
  std::ofstream(dir / "keep.onnx") << "old";
  std::ofstream(dir / "bad.onnx") << "garbage";
  EXPECT_FALSE(error_of([&] { qk::quantize_onnx(dir / "bad.onnx", dir / "keep.onnx", {}); }).empty());
  std::ifstream in(dir / "keep.onnx");
  std::string s;
  in >> s;
  EXPECT_EQ(s, "old");
}

}  // namespace
