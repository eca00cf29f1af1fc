// NF4 and double-quantized INT4: the NF4 levels against QLoRA's construction, nearest-level encoding,
// the double-quantized scales, every dequantize and GEMV variant against the scalar reference on awkward
// sizes and value edges, bad input, and the targets on the Silero VAD LSTM matrices.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/variant_test.hpp"
#include "quantkit/core/block_formats.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/files/manifest.hpp"
#include "quantkit/kernels/block_kernels.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qk {
namespace {

using kernels::KernelVariant;
using kernels::test::VariantName;
using kernels::test::VariantTest;

// The standard normal quantile by bisection on erfc (independent of the library).
double normal_quantile(double p) {
  double lo = -10, hi = 10;
  for (int i = 0; i < 200; ++i) {
    const double mid = (lo + hi) / 2;
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

TEST(Nf4, LevelsAreQloraNormalQuantiles) {
  // create_normal_map(offset=0.9677083): 8 quantiles on linspace(offset, 0.5, 9)[:-1], 7 negated on
  // linspace(offset, 0.5, 8)[:-1], and 0; sorted and divided by the largest.
  const double offset = 0.9677083;
  std::vector<double> v = {0.0};
  for (int i = 0; i < 8; ++i) v.push_back(normal_quantile(offset + (0.5 - offset) * i / 8));
  for (int i = 0; i < 7; ++i) v.push_back(-normal_quantile(offset + (0.5 - offset) * i / 7));
  std::sort(v.begin(), v.end());
  for (int k = 0; k < 16; ++k) EXPECT_NEAR(kNf4Levels[k], v[k] / v.back(), 2e-6) << k;  // float32 linspace
}

TEST(Nf4, EncodesToTheNearestLevelAndRoundTripsEveryLevel) {
  const unsigned seed = static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < 100000; ++i) {
    const float v = u(gen);
    // Distances in double; the code is the nearest level. Within float32 rounding of a midpoint (where
    // the library's float midpoint decides, ties to the lower level) either neighbour is the nearest.
    int best = 0;
    for (int k = 1; k < 16; ++k)
      if (std::fabs(double(kNf4Levels[k]) - v) < std::fabs(double(kNf4Levels[best]) - v)) best = k;
    const int got = nf4_code(v);
    const double margin =
        std::fabs(std::fabs(double(kNf4Levels[got]) - v) - std::fabs(double(kNf4Levels[best]) - v));
    if (got != best)
      EXPECT_LE(margin, 4 * 0x1p-24) << "value " << v << ": code " << got << ", nearest " << best;
  }
  std::vector<float> x(128);
  for (int j = 0; j < 128; ++j) x[j] = kNf4Levels[j % 16] * (j < 64 ? 3.5f : 0.25f);
  const Nf4Weights w = quantize_nf4(x, 128);
  ASSERT_EQ(w.scales.size(), 2u);
  EXPECT_EQ(w.rows, 1);
  EXPECT_EQ(w.scales[0], 3.5f);
  EXPECT_EQ(w.scales[1], 0.25f);
  EXPECT_EQ(w.codes[0], 0x10) << "element 0 in the low nibble of byte 0";
  std::vector<float> back(128);
  dequantize_nf4_ref(w.codes.data(), w.scales.data(), 128, 64, back.data());
  EXPECT_EQ(back, x);
  EXPECT_DOUBLE_EQ(bits_per_weight_nf4(), 4.5);
  EXPECT_DOUBLE_EQ(bits_per_weight_nf4(128), 4.25);
}

TEST(Q4dq, ScalesAreStoredInEightBitsAndErrorsStayWithinHalfAStep) {
  std::mt19937 gen(3);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> x(256 * 3);
  for (auto& v : x) v = d(gen);
  for (int j = 0; j < 32; ++j) x[256 + j] = 0.0f;  // an all-zero group
  const auto blocks = quantize_q4dq(x);
  ASSERT_EQ(blocks.size(), 3u);
  std::vector<float> back(x.size());
  dequantize_q4dq_ref(blocks.data(), static_cast<std::int64_t>(x.size()), back.data());
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    for (int g = 0; g < 8; ++g) {
      const float scale = blocks[b].scales[g] * blocks[b].super_scale;
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[b * 256 + g * 32 + j]));
      if (amax == 0) {
        EXPECT_EQ(blocks[b].scales[g], 0);
        continue;
      }
      // The 8-bit scale is rounded up: at least amax / 7.5, at most one unit more.
      EXPECT_GE(scale, amax / 7.5f * (1 - 1e-6f));
      EXPECT_LE(scale, amax / 7.5f + blocks[b].super_scale * 1.0001f);
      for (int j = 0; j < 32; ++j) {
        const std::size_t k = b * 256 + g * 32 + j;
        // Every weight, the group's largest included, within half a step of its dequantized value.
        EXPECT_LE(std::fabs(back[k] - x[k]), scale / 2 * 1.0001f) << k;
      }
    }
  }
  EXPECT_EQ(blocks[1].scales[0], 0);
  EXPECT_LE(bits_per_weight_q4dq(), 4.6);
}

TEST(BlockFormats, TinyAndSubnormalBlocksStayFinite) {
  for (const float tiny : {1e-38f, 1e-40f, 1e-44f, 1.4e-45f}) {
    std::vector<float> x(256, 0.0f);
    x[3] = tiny;
    x[100] = -tiny;
    const auto nf4 = quantize_nf4(x, 256);
    const auto q4 = quantize_q4dq(x);
    const std::vector<float> a = kernels::dequantize(nf4.view());
    const std::vector<float> b = kernels::dequantize(std::span<const BlockQ4DQ>(q4));
    for (std::size_t i = 0; i < x.size(); ++i) {
      ASSERT_TRUE(std::isfinite(a[i]) && std::isfinite(b[i])) << tiny << " at " << i;
      if (x[i] == 0.0f) {
        EXPECT_EQ(a[i], 0.0f) << tiny << " nf4 zero at " << i;
        EXPECT_EQ(b[i], 0.0f) << tiny << " q4dq zero at " << i;
      }
    }
  }
}

TEST(BlockFormats, BadInputIsRejected) {
  EXPECT_THROW(quantize_nf4(std::vector<float>(63, 1.0f), 63), Error);     // not whole groups
  EXPECT_THROW(quantize_nf4(std::vector<float>(128, 1.0f), 48), Error);    // not whole rows
  EXPECT_THROW(quantize_nf4(std::vector<float>(64, 1.0f), 64, 3), Error);  // an odd group
  EXPECT_THROW(quantize_nf4(std::vector<float>(64, 1.0f), 0), Error);
  EXPECT_THROW(quantize_q4dq(std::vector<float>(300, 1.0f)), Error);
  std::vector<float> nan(64, 1.0f);
  nan[5] = NAN;
  EXPECT_THROW(quantize_nf4(nan, 64), Error);
  const Nf4Weights w = quantize_nf4(std::vector<float>(128, 1.0f), 128);
  std::vector<float> x128(128), y1(1), y3(3);
  EXPECT_NO_THROW(kernels::gemv(w.view(), x128, y1));
  EXPECT_THROW(kernels::gemv(w.view(), x128, y3), Error);  // y does not match the rows
  Nf4View bad = w.view();
  bad.rows = 3;  // 3 rows need 3 x 64 code bytes
  EXPECT_THROW(kernels::gemv(bad, x128, y3), Error);
  bad = w.view();
  bad.cols = 100;
  EXPECT_THROW(kernels::dequantize(bad), Error);
  bad = w.view();
  bad.scales = bad.scales.first(1);
  EXPECT_THROW(kernels::gemv(bad, x128, y1), Error);
}

// Weights with the edges: zeros, a constant block, +-large, subnormals, and random values.
std::vector<float> edge_weights(std::int64_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> w(static_cast<std::size_t>(n));
  for (auto& v : w) v = d(gen);
  for (std::int64_t i = 0; i < n; ++i) {
    if (i % 512 < 64) w[i] = 0.0f;
    if (i % 512 >= 64 && i % 512 < 128) w[i] = 2.5f;
    if (i % 97 == 5) w[i] = (i % 2 ? 1e30f : -1e30f);
    if (i % 89 == 7) w[i] = 1e-40f;
  }
  return w;
}

// Whole blocks only: the counts of 256 weights (4 NF4 groups of 64, 1 Q4DQ super-block) the variants see.
constexpr std::int64_t kBlockCounts[] = {0, 1, 2, 3, 7, 33};

class DequantizeNf4 : public VariantTest<kernels::DequantizeNf4Fn> {};
TEST_P(DequantizeNf4, EqualsTheReferenceBitForBit) {
  const auto& v = variant();
  for (const std::int64_t blocks : kBlockCounts) {
    const auto w = edge_weights(blocks * 256, 11);
    // Every group size the SIMD variants take up to 256 (multiples of kNf4SimdGroup).
    for (std::int64_t group = kernels::kNf4SimdGroup; group <= 256; group += kernels::kNf4SimdGroup) {
      if (256 % group != 0) continue;
      const auto nf4 = quantize_nf4(w, 256, group);
      std::vector<float> want(w.size()), got(w.size(), -1.0f);
      const auto n = static_cast<std::int64_t>(w.size());
      dequantize_nf4_ref(nf4.codes.data(), nf4.scales.data(), n, group, want.data());
      v.fn(nf4.codes.data(), nf4.scales.data(), n, group, got.data());
      EXPECT_EQ(got, want) << v.name << " nf4 g" << group << ", runs of 256: " << blocks;
    }
  }
}
INSTANTIATE_TEST_SUITE_P(BlockKernels, DequantizeNf4, ::testing::ValuesIn(kernels::dequantize_nf4_variants()),
                         VariantName());

class DequantizeQ4dq : public VariantTest<kernels::DequantizeQ4dqFn> {};
TEST_P(DequantizeQ4dq, EqualsTheReferenceBitForBit) {
  const auto& v = variant();
  for (const std::int64_t blocks : kBlockCounts) {
    const auto w = edge_weights(blocks * 256, 11);
    const auto q4 = quantize_q4dq(w);
    std::vector<float> want(w.size()), got(w.size(), -1.0f);
    dequantize_q4dq_ref(q4.data(), static_cast<std::int64_t>(w.size()), want.data());
    v.fn(q4.data(), static_cast<std::int64_t>(w.size()), got.data());
    EXPECT_EQ(got, want) << v.name << " q4dq, blocks: " << blocks;
  }
}
INSTANTIATE_TEST_SUITE_P(BlockKernels, DequantizeQ4dq,
                         ::testing::ValuesIn(kernels::dequantize_q4dq_variants()), VariantName());

// A GEMV's y against the exact product of the dequantized weights: float32 sums of `cols` products,
// |error| <= cols * 2^-24 * sum |w x| (a loose, standard bound).
void expect_gemv_close(const std::vector<float>& y, const std::vector<float>& wd, std::int64_t rows,
                       std::int64_t cols, const std::vector<float>& x, const std::string& what) {
  for (std::int64_t r = 0; r < rows; ++r) {
    double exact = 0, mag = 0;
    for (std::int64_t c = 0; c < cols; ++c) {
      exact += double(wd[r * cols + c]) * x[c];
      mag += std::fabs(double(wd[r * cols + c]) * x[c]);
    }
    EXPECT_NEAR(y[r], exact, cols * 0x1p-24 * mag) << what << " " << rows << "x" << cols << " row " << r;
  }
}

// Rows x columns: 32, 64, 96 and 192 columns are whole NF4 groups but not whole Q4DQ super-blocks (NF4
// only).
const std::vector<std::pair<std::int64_t, std::int64_t>> kGemvShapes = {
    {2, 32}, {5, 64}, {4, 96}, {9, 192}, {1, 256}, {3, 512}, {17, 768}, {64, 2048}, {0, 256}};

class GemvNf4 : public VariantTest<kernels::GemvNf4Fn> {};
TEST_P(GemvNf4, AgreesWithTheReferenceWithinRounding) {
  std::mt19937 gen(kernels::test::random_seed());
  std::normal_distribution<float> d(0, 1);
  for (const auto& [rows, cols] : kGemvShapes) {
    std::vector<float> w(static_cast<std::size_t>(rows * cols)), x(static_cast<std::size_t>(cols));
    for (auto& v : w) v = d(gen);
    for (auto& v : x) v = d(gen);
    for (const std::int64_t group : {std::int64_t{32}, std::int64_t{64}, std::int64_t{128}}) {
      if (cols % group != 0) continue;
      const Nf4Weights nf4 = quantize_nf4(w, cols, group);
      std::vector<float> y(static_cast<std::size_t>(rows));
      variant().fn(nf4.codes.data(), nf4.scales.data(), rows, cols, group, x.data(), y.data());
      expect_gemv_close(y, kernels::dequantize(nf4.view()), rows, cols, x,
                        std::string(variant().name) + " nf4 g" + std::to_string(group));
    }
  }
}
INSTANTIATE_TEST_SUITE_P(BlockKernels, GemvNf4, ::testing::ValuesIn(kernels::gemv_nf4_variants()),
                         VariantName());

class GemvQ4dq : public VariantTest<kernels::GemvQ4dqFn> {};
TEST_P(GemvQ4dq, AgreesWithTheReferenceWithinRounding) {
  std::mt19937 gen(kernels::test::random_seed());
  std::normal_distribution<float> d(0, 1);
  for (const auto& [rows, cols] : kGemvShapes) {
    if (cols % BlockQ4DQ::kWeights != 0) continue;
    std::vector<float> w(static_cast<std::size_t>(rows * cols)), x(static_cast<std::size_t>(cols));
    for (auto& v : w) v = d(gen);
    for (auto& v : x) v = d(gen);
    const auto q4 = quantize_q4dq(w);
    std::vector<float> y(static_cast<std::size_t>(rows));
    variant().fn(q4.data(), rows, cols, x.data(), y.data());
    expect_gemv_close(y, kernels::dequantize(std::span<const BlockQ4DQ>(q4)), rows, cols, x,
                      std::string(variant().name) + " q4dq");
  }
}
INSTANTIATE_TEST_SUITE_P(BlockKernels, GemvQ4dq, ::testing::ValuesIn(kernels::gemv_q4dq_variants()),
                         VariantName());

// The targets on real weights: on the near-Gaussian LSTM matrices, NF4 (blocks of 64) has less
// weight MSE than INT4 RTN with groups of 64; double-quantized INT4 (g32) costs at most 4.6 bits/weight.
TEST(BlockFormats, SileroLstmNf4BeatsInt4RtnAtTheSameGroupSize) {
  const auto layers = load_manifest_layers(std::string(QK_SOURCE_DIR) + "/examples/data/silero_vad_v5_16k");
  int checked = 0;
  for (const auto& l : layers) {
    if (l.name.find("lstm") == std::string::npos) continue;
    ++checked;
    const auto nf4 = quantize_nf4(l.values, 64);
    const std::vector<float> back_nf4 = kernels::dequantize(nf4.view());
    QuantSpec spec;
    spec.bits = 4;
    spec.granularity = Granularity::kPerGroup;
    spec.group_size = 64;
    const TensorView<const float> v(l.values.data(), {static_cast<std::int64_t>(l.values.size())});
    std::vector<float> back_int4(l.values.size());
    fake_quantize<float>(v, choose_qparams<float>(v, spec), back_int4);
    const double mse_nf4 = compare(l.values, back_nf4).mse;
    const double mse_int4 = compare(l.values, back_int4).mse;
    EXPECT_LT(mse_nf4, mse_int4) << l.name;
    const auto q4 = quantize_q4dq(l.values);
    EXPECT_LT(compare(l.values, kernels::dequantize(std::span<const BlockQ4DQ>(q4))).mse, mse_int4 * 1.5)
        << l.name;
    std::printf("%s: MSE nf4 %.4e, int4 g64 %.4e, q4dq %.4e\n", l.name.c_str(), mse_nf4, mse_int4,
                compare(l.values, kernels::dequantize(std::span<const BlockQ4DQ>(q4))).mse);
  }
  EXPECT_EQ(checked, 2);
}

}  // namespace
}  // namespace qk
