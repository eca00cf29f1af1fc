// Layers of a mixed-precision run from files (files/mixed_workload.hpp): listing, loading, the paths no
// output may replace, and refusals before anything is loaded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/files/mixed_workload.hpp"
#include "quantkit/io/npy.hpp"

namespace qk {
namespace {

using io::test::ScratchDir;

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(FilesMixedWorkload, LoadsLayersAndListsWhatToProtect) {
  const ScratchDir dir;
  const std::vector<float> a(4 * 8, 0.5f), b(3 * 16, -0.25f);
  io::write_npy(dir.file("a.npy"), TensorView<const float>(a.data(), {4, 8}));
  io::write_npy(dir.file("b.npy"), TensorView<const float>(b.data(), {3, 16}));
  MixedWorkload w = open_mixed_workload({dir.file("a.npy"), dir.file("b.npy")}, dir.file("plan.json"));
  const MixedWorkload moved = std::move(w);  // the layers keep viewing the loaded weights
  ASSERT_EQ(moved.layers.size(), 2u);
  EXPECT_EQ(moved.layers[0].name, "a");
  EXPECT_EQ(moved.layers[1].shape, (Shape{3, 16}));
  EXPECT_EQ(moved.layers[1].weights[0], -0.25f);
  EXPECT_EQ(moved.total_weights, 32u + 48u);
  EXPECT_EQ(moved.files.size(), 2u);
  EXPECT_TRUE(contains(moved.protect, dir.file("a.npy")));
  EXPECT_TRUE(contains(moved.protect, dir.file("b.npy")));
}

TEST(FilesMixedWorkload, RefusesAnOutputOverAnInputAndNonFiniteWeights) {
  const ScratchDir dir;
  std::vector<float> a(4 * 8, 0.5f);
  io::write_npy(dir.file("a.npy"), TensorView<const float>(a.data(), {4, 8}));
  EXPECT_THROW(open_mixed_workload({dir.file("a.npy")}, dir.file("a.npy")), Error);
  a[5] = std::nanf("");
  io::write_npy(dir.file("nan.npy"), TensorView<const float>(a.data(), {4, 8}));
  try {
    open_mixed_workload({dir.file("nan.npy")});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nan.npy"), std::string::npos) << e.what();
  }
}

// Activations by LAYER=FILE and by a manifest's "acts" field become the layer's Gram matrix; a file of
// the wrong width, an unknown layer, a layer given twice and NaN fail naming the layer and the file.
TEST(FilesMixedWorkload, ActivationsPerLayerAndTheirErrors) {
  const ScratchDir dir;
  const std::vector<float> a(4 * 8, 0.5f), b(3 * 2 * 4, -0.25f);
  io::write_npy(dir.file("a.npy"), TensorView<const float>(a.data(), {4, 8}));
  io::write_npy(dir.file("b.npy"), TensorView<const float>(b.data(), {3, 2, 4}));
  std::vector<float> x(2 * 5 * 8);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3;
  io::write_npy(dir.file("x.npy"), TensorView<const float>(x.data(), {2, 5, 8}));  // [batch, seq, in]
  io::write_npy(dir.file("x6.npy"), TensorView<const float>(x.data(), {10, 8}));
  const MixedWorkload w = open_mixed_workload({dir.file("a.npy"), dir.file("b.npy")}, "",
                                              {parse_activation_file("b=" + dir.file("x.npy"))});
  EXPECT_TRUE(w.has_activations());
  EXPECT_TRUE(w.layers[0].gram.empty());
  ASSERT_EQ(w.layers[1].gram.size(), 64u);  // b: [3, 2, 4] takes 8 inputs
  double g00 = 0;
  for (std::size_t r = 0; r < 10; ++r) g00 += double(x[r * 8]) * x[r * 8];
  EXPECT_DOUBLE_EQ(w.layers[1].gram[0], g00);
  EXPECT_TRUE(contains(w.protect, dir.file("x.npy")));

  // The same through a manifest's "acts" field, relative to the manifest.
  std::ofstream(dir.file("manifest.json"))
      << R"({"layers": [{"name": "a", "file": "a.npy", "shape": [4, 8], "acts": "x6.npy"}]})";
  const MixedWorkload m = open_mixed_workload({dir.file("manifest.json")});
  EXPECT_EQ(std::vector<double>(m.layers[0].gram.begin(), m.layers[0].gram.end()), w.grams[1]);

  struct Case {
    std::vector<std::string> acts;
    std::vector<std::string> phrases;
  };
  std::vector<float> nan = x;
  nan[3] = std::nanf("");
  io::write_npy(dir.file("nan.npy"), TensorView<const float>(nan.data(), {10, 8}));
  io::write_npy(dir.file("narrow.npy"), TensorView<const float>(x.data(), {20, 4}));
  for (const Case& c : std::vector<Case>{
           {{"a=" + dir.file("narrow.npy")}, {"layer a", "narrow.npy", "(20, 4)", "expected (rows, 8)"}},
           {{"c=" + dir.file("x6.npy")}, {"x6.npy", "no layer is named c"}},
           {{"a=" + dir.file("x6.npy"), "a=" + dir.file("x.npy")}, {"layer a", "twice", "x6.npy"}},
           {{"a=" + dir.file("nan.npy")}, {"nan.npy"}}}) {
    std::vector<ActivationFile> acts;
    for (const auto& t : c.acts) acts.push_back(parse_activation_file(t));
    try {
      open_mixed_workload({dir.file("a.npy"), dir.file("b.npy")}, "", acts);
      ADD_FAILURE() << "no error for " << c.acts[0];
    } catch (const Error& e) {
      for (const auto& p : c.phrases) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_activation_file("a.npy"), Error);
  EXPECT_THROW(open_mixed_workload({dir.file("a.npy")}, dir.file("x6.npy"),
                                   {parse_activation_file("a=" + dir.file("x6.npy"))}),
               Error);
}

}  // namespace
}  // namespace qk
