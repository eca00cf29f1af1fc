// GGUF under a size budget (files/gguf_quant.hpp, GgufBudget), importance files (read_importance) and
// model-against-reference errors (files/model_compare.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/files/gguf_quant.hpp"
#include "quantkit/files/model_compare.hpp"
#include "quantkit/io/gguf.hpp"
#include "quantkit/io/npz.hpp"

namespace qk {
namespace {

using io::test::normal_values;
using io::test::ScratchDir;

struct Tensor {
  std::string name;
  std::vector<std::int64_t> ne;
  std::vector<float> values;
};

void write_f32_gguf(const std::string& path, const std::vector<Tensor>& tensors) {
  std::vector<io::GgufWriter::Info> infos;
  for (const Tensor& t : tensors) infos.push_back({t.name, t.ne, io::kGgmlF32});
  io::GgufWriter w(path, {{"general.architecture", io::GgufValue::of_string("llama")}}, infos);
  for (const Tensor& t : tensors) w.write_data(std::as_bytes(std::span(t.values)));
  w.commit();
}

// Three matrices of rows of 256 (every candidate fits) at different scales, and a norm.
std::vector<Tensor> small_model() {
  std::vector<Tensor> t = {{"blk.0.attn_q.weight", {256, 8}, normal_values(256 * 8, 1, 0.0f, 0.02f)},
                           {"blk.0.ffn_up.weight", {256, 16}, normal_values(256 * 16, 2, 0.0f, 1.0f)},
                           {"blk.0.ffn_down.weight", {256, 12}, normal_values(256 * 12, 3, 0.0f, 0.3f)},
                           {"output_norm.weight", {256}, normal_values(256, 4, 1.0f, 0.1f)}};
  t[2].values[7] = 6.0f;  // an outlier, so that down's error differs by type in its own way
  return t;
}

std::uint64_t bytes_of(ggml::Type t, const std::vector<std::int64_t>& ne) {
  return io::ggml_tensor_bytes(static_cast<std::uint32_t>(t), ne);
}

TEST(GgufBudget, ThePlanIsTheExactOptimumOverEveryCombination) {
  ScratchDir dir;
  const std::vector<Tensor> model = small_model();
  write_f32_gguf(dir.file("m.gguf"), model);
  std::uint64_t weights = 0;
  for (const Tensor& t : model) weights += t.values.size();
  for (const double bpw : {3.5, 4.6, 5.5, 7.0, 12.0}) {
    GgufQuantOptions o;
    o.budget = {GgufBudgetKind::kBitsPerWeight, bpw, {}};
    const GgufQuantReport r = plan_gguf(dir.file("m.gguf"), o);
    ASSERT_EQ(r.tensors.size(), 4u);
    EXPECT_EQ(r.tensors[3].to, ggml::Type::kF32);
    EXPECT_TRUE(r.tensors[3].candidate_errors.empty());
    // Brute force over the 11^3 choices for the three matrices.
    const std::uint64_t limit =
        static_cast<std::uint64_t>(std::floor(bpw * static_cast<double>(weights) / 8));
    const std::uint64_t fixed = bytes_of(ggml::Type::kF32, model[3].ne);
    double best = std::numeric_limits<double>::infinity();
    const auto& c0 = r.tensors[0].candidate_errors;
    const auto& c1 = r.tensors[1].candidate_errors;
    const auto& c2 = r.tensors[2].candidate_errors;
    ASSERT_EQ(c0.size(), 11u);
    for (const auto& [t0, e0] : c0)
      for (const auto& [t1, e1] : c1)
        for (const auto& [t2, e2] : c2) {
          const std::uint64_t bytes =
              fixed + bytes_of(t0, model[0].ne) + bytes_of(t1, model[1].ne) + bytes_of(t2, model[2].ne);
          if (bytes <= limit) best = std::min(best, e0 + e1 + e2);
        }
    EXPECT_NEAR(r.total_error, best, 1e-9 * best) << bpw;
    EXPECT_LE(r.data_bytes, limit) << bpw;
    EXPECT_LE(r.bits_per_weight, bpw);
  }
}

TEST(GgufBudget, MeasuredErrorsAreTheWrittenFilesErrors) {
  ScratchDir dir;
  const std::vector<Tensor> model = small_model();
  write_f32_gguf(dir.file("m.gguf"), model);
  GgufQuantOptions o;
  o.budget = {GgufBudgetKind::kBitsPerWeight, 5.0, {}};
  o.threads = 2;
  const GgufQuantReport r = quantize_gguf(dir.file("m.gguf"), dir.file("q.gguf"), o);
  const ModelComparison c = compare_model(dir.file("q.gguf"), dir.file("m.gguf"));
  ASSERT_EQ(c.tensors.size(), 4u);
  for (std::size_t i = 0; i < 3; ++i) {
    double chosen = -1;
    for (const auto& [t, e] : r.tensors[i].candidate_errors)
      if (t == r.tensors[i].to) chosen = e;
    const double sse = c.tensors[i].error.mse * static_cast<double>(model[i].values.size());
    EXPECT_NEAR(chosen, sse, 1e-6 * sse) << model[i].name;
    EXPECT_EQ(c.tensors[i].type, ggml::traits(r.tensors[i].to).name);
  }
  EXPECT_EQ(c.tensors[3].error.mse, 0.0);  // the norm stays F32
  // general.file_type names the type holding the most weights.
  const io::GgufFile q = io::GgufFile::open(dir.file("q.gguf"));
  EXPECT_EQ(q.find("general.file_type")->as_uint("general.file_type"), llama_file_type(r.file_type));
}

TEST(GgufBudget, FileBytesCountHeaderAndPaddingAndTooSmallBudgetsNameTheSmallest) {
  ScratchDir dir;
  write_f32_gguf(dir.file("m.gguf"), small_model());
  for (const double bytes : {12000.0, 20000.0, 40000.0}) {
    GgufQuantOptions o;
    o.budget = {GgufBudgetKind::kFileBytes, bytes, {}};
    quantize_gguf(dir.file("m.gguf"), dir.file("q.gguf"), o);
    EXPECT_LE(std::filesystem::file_size(dir.file("q.gguf")), bytes);
  }
  GgufQuantOptions o;
  o.budget = {GgufBudgetKind::kFileBytes, 3000, {}};
  try {
    quantize_gguf(dir.file("m.gguf"), dir.file("x.gguf"), o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is below the smallest these candidates reach"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.gguf")));
}

TEST(GgufBudget, CandidatesAndPatternsRestrictTheChoice) {
  ScratchDir dir;
  write_f32_gguf(dir.file("m.gguf"), small_model());
  GgufQuantOptions o;
  o.budget = {GgufBudgetKind::kBitsPerWeight, 8.0, {ggml::Type::kQ4_K, ggml::Type::kQ8_0}};
  o.tensor_types = {{"*ffn_up*", ggml::Type::kQ6_K}};
  const GgufQuantReport r = plan_gguf(dir.file("m.gguf"), o);
  EXPECT_EQ(r.tensors[1].to, ggml::Type::kQ6_K);
  EXPECT_TRUE(r.tensors[1].candidate_errors.empty());
  for (const std::size_t i : {0u, 2u}) {
    EXPECT_EQ(r.tensors[i].candidate_errors.size(), 2u);
    EXPECT_TRUE(r.tensors[i].to == ggml::Type::kQ4_K || r.tensors[i].to == ggml::Type::kQ8_0);
  }
}

TEST(Importance, ImatrixGgufIsSumsOverCountsAndUnreachedMatricesWeighAlike) {
  ScratchDir dir;
  // A 3-D weight's imatrix: two matrices of 4 columns, the second never reached.
  const std::vector<float> sums = {2, 4, 6, 8, 1, 1, 1, 1}, counts = {2, 0};
  io::GgufWriter w(dir.file("imatrix.gguf"), {{"general.type", io::GgufValue::of_string("imatrix")}},
                   {{"blk.0.ffn_up_exps.weight.in_sum2", {4, 2}, io::kGgmlF32},
                    {"blk.0.ffn_up_exps.weight.counts", {1, 2}, io::kGgmlF32}});
  w.write_data(std::as_bytes(std::span(sums)));
  w.write_data(std::as_bytes(std::span(counts)));
  w.commit();
  const ImportanceMap m = read_importance(dir.file("imatrix.gguf"));
  ASSERT_EQ(m.size(), 1u);
  const TensorImportance& imp = m.at("blk.0.ffn_up_exps.weight");
  EXPECT_EQ(imp.columns, 4);
  EXPECT_EQ(imp.values, (std::vector<float>{1, 2, 3, 4, 1, 1, 1, 1}));
}

TEST(Importance, NpzHoldsImportancesOrActivationsAndBadFilesFail) {
  ScratchDir dir;
  const std::vector<float> vec = {0.5f, 2.0f, 0.0f};
  const std::vector<float> acts = {1, 2, 3, 3, 2, 1};  // [2, 3]: mean squares 5, 4, 5
  {
    io::NpzWriter npz;
    npz.add("a.weight", io::DType::kFloat32, {3}, std::as_bytes(std::span(vec)));
    npz.add("b.weight", io::DType::kFloat32, {2, 3}, std::as_bytes(std::span(acts)));
    npz.write(dir.file("imp.npz"));
  }
  const ImportanceMap m = read_importance(dir.file("imp.npz"));
  EXPECT_EQ(m.at("a.weight").values, vec);
  EXPECT_EQ(m.at("b.weight").values, (std::vector<float>{5, 4, 5}));
  const std::vector<float> negative = {1, -1};
  {
    io::NpzWriter npz;
    npz.add("a.weight", io::DType::kFloat32, {2}, std::as_bytes(std::span(negative)));
    npz.write(dir.file("neg.npz"));
  }
  EXPECT_THROW(read_importance(dir.file("neg.npz")), Error);
  EXPECT_THROW(read_importance(dir.file("missing.npz")), Error);
  // Importance of the wrong width for a tensor is refused, naming it.
  write_f32_gguf(dir.file("m.gguf"), small_model());
  GgufQuantOptions o;
  o.importance["blk.0.ffn_up.weight"] = {3, {1, 1, 1}};
  try {
    plan_gguf(dir.file("m.gguf"), o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_up.weight"), std::string::npos) << e.what();
  }
  o.importance = {{"not.in.the.model", {256, std::vector<float>(256, 1.0f)}}};
  EXPECT_THROW(plan_gguf(dir.file("m.gguf"), o), Error);
}

TEST(ModelCompare, IdenticalModelsAreExactAndMismatchesNameTheTensor) {
  ScratchDir dir;
  std::vector<Tensor> model = small_model();
  write_f32_gguf(dir.file("m.gguf"), model);
  const ModelComparison same = compare_model(dir.file("m.gguf"), dir.file("m.gguf"));
  EXPECT_EQ(same.total.mse, 0.0);
  EXPECT_EQ(same.relative_rmse, 0.0);
  model[1].ne = {128, 32};
  write_f32_gguf(dir.file("reshaped.gguf"), model);
  EXPECT_THROW(compare_model(dir.file("reshaped.gguf"), dir.file("m.gguf")), Error);
  const std::vector<Tensor> more = small_model();
  write_f32_gguf(dir.file("three.gguf"), {more[0], more[1], more[2]});
  const ModelComparison c = compare_model(dir.file("three.gguf"), dir.file("m.gguf"));
  EXPECT_EQ(c.reference_only, std::vector<std::string>{"output_norm.weight"});
  EXPECT_THROW(compare_model(dir.file("m.gguf"), dir.file("three.gguf")), Error);
}

}  // namespace
}  // namespace qk
