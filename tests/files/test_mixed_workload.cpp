// Layers of a mixed-precision run from files (files/mixed_workload.hpp): listing, loading, the paths no
// output may replace, and refusals before anything is loaded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

}  // namespace
}  // namespace qk
