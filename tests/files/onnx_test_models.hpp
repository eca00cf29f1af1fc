// Building blocks for the ONNX tests' hand-made models (test_onnx_model, test_onnx_rewrite): a per-test
// temporary folder, float tensors, value infos, nodes, If branches, and writing a model to a file.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../io/onnx_model.hpp"

namespace qk::test {

// A folder of its own for each test, removed afterwards.
struct OnnxTempDir {
  std::filesystem::path path;
  OnnxTempDir() {
    path = std::filesystem::temp_directory_path() /
           ("qk_onnx_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~OnnxTempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

// Seeded normal values (standard deviation `sd`).
inline std::vector<float> normal_values(std::size_t n, unsigned seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline onnx::TensorProto float_tensor(const std::string& name, const std::vector<std::int64_t>& shape,
                                      const std::vector<float>& v) {
  std::string raw(v.size() * 4, '\0');
  std::memcpy(raw.data(), v.data(), raw.size());
  return onnxfile::make_tensor(name, onnxfile::kFloat, shape, raw);
}

inline void add_value(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list, const std::string& name,
                      std::int32_t type = onnxfile::kFloat) {
  auto* v = list->Add();
  v->set_name(name);
  v->mutable_type()->mutable_tensor_type()->set_elem_type(type);
}

inline onnx::NodeProto& add_node(onnx::GraphProto& g, const std::string& op, std::vector<std::string> in,
                                 std::vector<std::string> out) {
  auto& n = *g.add_node();
  n.set_op_type(op);
  n.set_name(op + "_" + std::to_string(g.node_size()));
  for (auto& s : in) n.add_input(s);
  for (auto& s : out) n.add_output(s);
  return n;
}

// A model at IR `ir`, opset 13, with an empty main graph.
inline onnx::ModelProto empty_model(std::int64_t ir = 7) {
  onnx::ModelProto m;
  m.set_ir_version(ir);
  m.add_opset_import()->set_version(13);
  m.mutable_graph()->set_name("main");
  return m;
}

// then_branch and else_branch of an If node, each filled by `fill(graph, attribute name)`.
inline void add_branches(onnx::NodeProto& iff,
                         const std::function<void(onnx::GraphProto&, const std::string&)>& fill) {
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto* a = iff.add_attribute();
    a->set_name(branch);
    a->set_type(onnx::AttributeProto::GRAPH);
    a->mutable_g()->set_name(branch);
    fill(*a->mutable_g(), branch);
  }
}

inline void save_model_file(const onnx::ModelProto& m, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  ASSERT_TRUE(m.SerializeToOstream(&out));
}

inline const onnx::TensorProto* find_initializer(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& t : g.initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

}  // namespace qk::test
