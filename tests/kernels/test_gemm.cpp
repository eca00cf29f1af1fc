// Every registered GEMV/GEMM variant against its scalar reference (gemm_microkernel_tester.hpp: random
// data on fixed and tile-derived shapes, whole and partial row ranges; exact for the INT8 integer path,
// within a stated float bound otherwise), on the extreme codes that make vpmaddubsw saturate in careless
// kernels; then gemm() across thread counts, against FP32, and on bad input. One test instance per
// variant; those the CPU lacks are skipped.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "gemm_microkernel_tester.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/kernels/gemm.hpp"
#include "quantkit/kernels/gemm_kernels.hpp"
#include "quantkit/kernels/parallel.hpp"

namespace qk::kernels {
namespace {

using test::float_sum_bound;
using test::gemm_shapes;
using test::GemmShape;
using test::run_row_ranges;
using test::VariantName;
using test::VariantTest;
using Size = GemmShape;

std::uint32_t seed() { return test::random_seed(); }

std::vector<float> normal(std::size_t n, float stddev, std::mt19937& rng) {
  return test::normal_values(n, stddev, rng);
}

#define QK_TRACE_CASE(s)                                                                                     \
  SCOPED_TRACE(::testing::Message() << "batch " << (s).batch << " rows " << (s).rows << " cols " << (s).cols \
                                    << " seed " << seed())

class GemmFp32Variants : public VariantTest<GemmFp32Fn> {};
TEST_P(GemmFp32Variants, MatchTheReferenceWithinFloatBound) {
  test::expect_float_variant_close(variant(), gemm_fp32_ref, pack_fp32);
}
INSTANTIATE_TEST_SUITE_P(GemmFp32, GemmFp32Variants, ::testing::ValuesIn(gemm_fp32_variants()),
                         VariantName());

class GemmFp16Variants : public VariantTest<GemmFp16Fn> {};
TEST_P(GemmFp16Variants, MatchTheReferenceWithinFloatBound) {
  test::expect_float_variant_close(variant(), gemm_fp16_ref, pack_fp16);
}
INSTANTIATE_TEST_SUITE_P(GemmFp16, GemmFp16Variants, ::testing::ValuesIn(gemm_fp16_variants()),
                         VariantName());

class GemmInt8FloatVariants : public VariantTest<GemmInt8FloatFn> {};
TEST_P(GemmInt8FloatVariants, MatchTheReferenceWithinFloatBound) {
  test::expect_float_variant_close(variant(), gemm_int8_float_ref, pack_int8);
}
INSTANTIATE_TEST_SUITE_P(GemmInt8Float, GemmInt8FloatVariants,
                         ::testing::ValuesIn(gemm_int8_float_variants()), VariantName());

class GemmInt8Variants : public VariantTest<GemmInt8Fn> {};
TEST_P(GemmInt8Variants, AreExactlyTheReference) {
  std::mt19937 rng(seed());
  const auto& v = variant();
  for (const Size& s : gemm_shapes(v.tile)) {
    for (auto scaling : {ActivationScaling::kPerRow, ActivationScaling::kPerTensor}) {
      QK_TRACE_CASE(s);
      auto x = normal(static_cast<std::size_t>(s.batch * s.cols), 1.0f, rng);
      if (s.batch > 0 && s.cols > 2) x[1] = 40.0f;  // one outlier: per-row and per-tensor scales differ
      const Int8Weights w =
          pack_int8(normal(static_cast<std::size_t>(s.rows * s.cols), 0.1f, rng), s.rows, s.cols);
      QuantizedActivations xq;
      quantize_activations(x.data(), s.batch, s.cols, w.stride, scaling, xq);
      ASSERT_LE(xq.max_code, 128);
      std::vector<float> want(static_cast<std::size_t>(s.batch * s.rows));
      gemm_int8_ref(xq, w, 0, s.rows, want.data());
      run_row_ranges(
          s, [&](std::int64_t r0, std::int64_t r1, float* y) { v.fn(xq, w, r0, r1, y); },
          [&](std::size_t i, float got) { ASSERT_EQ(got, want[i]) << v.name << " output " << i; });
      if (HasFatalFailure()) return;
    }
  }
}

// Hand-made activations: every code `code`, zero point 0, scale 1.
QuantizedActivations constant_activations(std::int64_t batch, std::int64_t cols, std::int64_t stride,
                                          std::uint8_t code) {
  QuantizedActivations xq;
  xq.rows = batch;
  xq.cols = cols;
  xq.stride = stride;
  xq.codes.assign(static_cast<std::size_t>(batch * stride), 0);
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t k = 0; k < cols; ++k) xq.codes[static_cast<std::size_t>(b * stride + k)] = code;
  xq.scales.assign(static_cast<std::size_t>(batch), 1.0f);
  xq.zero_points.assign(static_cast<std::size_t>(batch), 0);
  const std::int64_t blocks = stride / QuantizedActivations::kBlock;
  xq.block_sums.assign(static_cast<std::size_t>(batch * blocks), 0);
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t k = 0; k < cols; ++k)
      xq.block_sums[static_cast<std::size_t>(b * blocks + k / 32)] += code;
  xq.max_code = code;
  return xq;
}

// vpmaddubsw adds two u8*s8 products into a saturating int16: 2 * 255 * -128 would saturate. The INT8
// kernels are exact at code 128 (the largest reduce_range produces: 2 * 128 * -128 = -32768 fits) by the
// choice of activation range, and at codes above it by falling back to the exact path (AVX2) or by
// having no int16 step (VNNI). Every output here is an exact integer in float.
TEST_P(GemmInt8Variants, ExactOnExtremeCodes) {
  const auto& v = variant();
  for (const std::uint8_t code :
       {std::uint8_t{127}, std::uint8_t{128}, std::uint8_t{129}, std::uint8_t{255}}) {
    for (const std::int8_t weight : {std::int8_t{-128}, std::int8_t{127}}) {
      const std::int64_t rows = 5, cols = 1000, batch = 3;
      const std::vector<std::int8_t> codes(static_cast<std::size_t>(rows * cols), weight);
      const Int8Weights w = pack_int8_codes(codes, std::vector<float>(rows, 1.0f), rows, cols);
      const QuantizedActivations xq = constant_activations(batch, cols, w.stride, code);
      std::vector<float> got(static_cast<std::size_t>(batch * rows));
      v.fn(xq, w, 0, rows, got.data());
      const float exact = static_cast<float>(cols * code * weight);
      for (float y : got) ASSERT_EQ(y, exact) << v.name << " code " << int(code) << " weight " << int(weight);
    }
  }
}
INSTANTIATE_TEST_SUITE_P(GemmInt8, GemmInt8Variants, ::testing::ValuesIn(gemm_int8_variants()),
                         VariantName());

// The same through gemm(): all-positive activations put the maximum at code 127 or 128.
TEST(GemmInt8, ExactAtTheLargestReduceRangeCode) {
  const std::int64_t rows = 8, cols = 4096;
  const std::vector<std::int8_t> codes(static_cast<std::size_t>(rows * cols), -128);
  const Int8Weights w = pack_int8_codes(codes, std::vector<float>(rows, 1.0f), rows, cols);
  const std::vector<float> x(static_cast<std::size_t>(cols), 3.0f);
  std::vector<float> y(static_cast<std::size_t>(rows));
  gemv(x, w, y);
  QuantizedActivations xq;
  quantize_activations(x.data(), 1, cols, w.stride, ActivationScaling::kPerRow, xq);
  ASSERT_GE(xq.max_code, 127);
  const float exact = static_cast<float>((xq.max_code - xq.zero_points[0]) * -128.0 * cols) * xq.scales[0];
  for (float v : y) EXPECT_EQ(v, exact);
}

// Bound for INT4: the kernels sum per-group float terms in another order than the reference (which uses
// double); each term's magnitude is s_g * (Σ x*n + 8 Σ x + za |Σ code|).
std::vector<double> int4_magnitudes(const QuantizedActivations& xq, const Int4Weights& w) {
  const auto codes = unpack_int4_codes(w);
  const std::int64_t groups = w.groups_per_row();
  std::vector<double> m(static_cast<std::size_t>(xq.rows * w.rows), 0.0);
  for (std::int64_t b = 0; b < xq.rows; ++b)
    for (std::int64_t o = 0; o < w.rows; ++o) {
      double total = 0;
      for (std::int64_t g = 0; g < groups; ++g) {
        double group = 0;
        for (std::int64_t k = g * w.group_size; k < std::min(w.cols, (g + 1) * w.group_size); ++k) {
          const double xv = xq.codes[static_cast<std::size_t>(b * xq.stride + k)];
          const double c = codes[static_cast<std::size_t>(o * w.cols + k)];
          group += xv * (c + 8) + 8 * xv + xq.zero_points[static_cast<std::size_t>(b)] * std::fabs(c);
        }
        total += std::fabs(w.scales[static_cast<std::size_t>(o * groups + g)]) * group;
      }
      m[static_cast<std::size_t>(b * w.rows + o)] = total * xq.scales[static_cast<std::size_t>(b)];
    }
  return m;
}

class GemmInt4Variants : public VariantTest<GemmInt4Fn> {};
TEST_P(GemmInt4Variants, MatchTheReferenceWithinBound) {
  std::mt19937 rng(seed());
  const auto& v = variant();
  for (const std::int64_t group : {32, 64, 128}) {
    for (const Size& s : gemm_shapes(v.tile)) {
      QK_TRACE_CASE(s);
      const auto x = normal(static_cast<std::size_t>(s.batch * s.cols), 1.0f, rng);
      const Int4Weights w =
          pack_int4(normal(static_cast<std::size_t>(s.rows * s.cols), 0.1f, rng), s.rows, s.cols, group);
      QuantizedActivations xq;
      quantize_activations(x.data(), s.batch, s.cols, w.stride, ActivationScaling::kPerRow, xq);
      std::vector<float> want(static_cast<std::size_t>(s.batch * s.rows));
      gemm_int4_ref(xq, w, 0, s.rows, want.data());
      const auto mag = int4_magnitudes(xq, w);
      run_row_ranges(
          s, [&](std::int64_t r0, std::int64_t r1, float* y) { v.fn(xq, w, r0, r1, y); },
          [&](std::size_t i, float got) {
            ASSERT_LE(std::fabs(got - want[i]), float_sum_bound(w.groups_per_row() + 16, mag[i]))
                << v.name << " group " << group << " output " << i;
          });
      if (HasFatalFailure()) return;
    }
  }
}

// Codes 255 against nibbles at -8 and 7 (the largest products, 255 * 15 per byte): exact integers.
TEST_P(GemmInt4Variants, ExactOnExtremeCodes) {
  const auto& v = variant();
  for (const std::int64_t group : {32, 64, 128}) {
    for (const std::int8_t weight : {std::int8_t{-8}, std::int8_t{7}}) {
      const std::int64_t rows = 5, cols = 1000, batch = 3;
      const std::int64_t groups = (cols + group - 1) / group;
      const std::vector<std::int8_t> codes(static_cast<std::size_t>(rows * cols), weight);
      const Int4Weights w = pack_int4_codes(
          codes, std::vector<float>(static_cast<std::size_t>(rows * groups), 1.0f), rows, cols, group);
      const QuantizedActivations xq = constant_activations(batch, cols, w.stride, 255);
      std::vector<float> got(static_cast<std::size_t>(batch * rows));
      v.fn(xq, w, 0, rows, got.data());
      const float exact = static_cast<float>(cols * 255 * weight);
      for (float y : got) ASSERT_EQ(y, exact) << v.name << " group " << group << " weight " << int(weight);
    }
  }
}
INSTANTIATE_TEST_SUITE_P(GemmInt4, GemmInt4Variants, ::testing::ValuesIn(gemm_int4_variants()),
                         VariantName());

template <class Weights, class Call>
void expect_thread_independent(const Weights& w, std::int64_t batch, Call&& call) {
  std::vector<float> one(static_cast<std::size_t>(batch * w.rows));
  call(one, 1);
  for (int threads : {2, 3, 5, 8}) {
    std::vector<float> many(one.size());
    call(many, threads);
    ASSERT_EQ(many, one) << threads << " threads";
  }
}

TEST(Gemm, ResultsDoNotDependOnTheThreadCount) {
  std::mt19937 rng(seed());
  for (const Size& s : {Size{1, 200, 300}, Size{7, 77, 129}, Size{64, 64, 256}}) {
    QK_TRACE_CASE(s);
    const auto x = normal(static_cast<std::size_t>(s.batch * s.cols), 1.0f, rng);
    const auto wf = normal(static_cast<std::size_t>(s.rows * s.cols), 0.1f, rng);
    const auto fp16 = pack_fp16(wf, s.rows, s.cols);
    const auto int8 = pack_int8(wf, s.rows, s.cols);
    const auto int4 = pack_int4(wf, s.rows, s.cols, 32);
    expect_thread_independent(
        fp16, s.batch, [&](std::vector<float>& y, int t) { gemm(x, s.batch, fp16, y, {.threads = t}); });
    expect_thread_independent(
        int8, s.batch, [&](std::vector<float>& y, int t) { gemm(x, s.batch, int8, y, {.threads = t}); });
    expect_thread_independent(int8, s.batch, [&](std::vector<float>& y, int t) {
      gemm_float_activations(x, s.batch, int8, y, {.threads = t});
    });
    expect_thread_independent(
        int4, s.batch, [&](std::vector<float>& y, int t) { gemm(x, s.batch, int4, y, {.threads = t}); });
  }
}

// What each format costs in accuracy on Gaussian data, against FP32 (relative RMS error): bounds set at
// about twice what was measured (fp16 1e-4 .. int4 g32 ~8e-2 on 256x512), to catch a broken kernel, not
// noise.
TEST(Gemm, FormatsStayCloseToFp32) {
  std::mt19937 rng(seed());
  const std::int64_t batch = 4, rows = 256, cols = 512;
  const auto x = normal(static_cast<std::size_t>(batch * cols), 1.0f, rng);
  const auto wf = normal(static_cast<std::size_t>(rows * cols), 0.05f, rng);
  std::vector<float> ref(static_cast<std::size_t>(batch * rows)), y(ref.size());
  gemm(x, batch, pack_fp32(wf, rows, cols), ref);
  auto rel_rms = [&] {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      num += (y[i] - ref[i]) * static_cast<double>(y[i] - ref[i]);
      den += ref[i] * static_cast<double>(ref[i]);
    }
    return std::sqrt(num / den);
  };
  gemm(x, batch, pack_fp16(wf, rows, cols), y);
  EXPECT_LT(rel_rms(), 1e-3);
  gemm(x, batch, pack_int8(wf, rows, cols), y);
  EXPECT_LT(rel_rms(), 3e-2);
  gemm_float_activations(x, batch, pack_int8(wf, rows, cols), y);
  EXPECT_LT(rel_rms(), 2e-2);
  gemm(x, batch, pack_int4(wf, rows, cols, 32), y);
  EXPECT_LT(rel_rms(), 0.2);
}

TEST(Gemm, BiasIsAddedOnce) {
  const std::vector<float> wf = {1, 2, 3, 4, 5, 6};
  const std::vector<float> x = {1, 1, 1};
  const std::vector<float> bias = {10, 20};
  std::vector<float> y(2);
  gemm(x, 1, pack_fp32(wf, 2, 3), y, {}, bias);
  EXPECT_EQ(y, (std::vector<float>{16, 35}));
  gemm(x, 1, pack_fp16(wf, 2, 3), y, {}, bias);
  EXPECT_EQ(y, (std::vector<float>{16, 35}));
}

TEST(Gemm, RejectsBadInput) {
  const auto w8 = pack_int8(std::vector<float>(12, 0.5f), 3, 4);
  std::vector<float> y(3);
  EXPECT_THROW(gemm(std::vector<float>(5, 1.0f), 1, w8, y), Error);  // x too long
  EXPECT_THROW(gemm(std::vector<float>(4, 1.0f), 1, w8, std::span<float>(y).first(2)), Error);
  EXPECT_THROW(gemm(std::vector<float>(4, 1.0f), 1, w8, y, {}, std::vector<float>(2)), Error);  // bias
  std::vector<float> nan_x(4, 1.0f);
  nan_x[2] = std::nanf("");
  EXPECT_THROW(gemm(nan_x, 1, w8, y), Error);
  EXPECT_THROW(pack_int4(std::vector<float>(12, 0.5f), 3, 4, 48), Error);  // group size
  EXPECT_THROW(pack_int4_codes(std::vector<std::int8_t>(12, 9), std::vector<float>(3, 1.0f), 3, 4, 32),
               Error);
  EXPECT_THROW(pack_int8(std::vector<float>(11, 0.5f), 3, 4), Error);  // shape
  EXPECT_THROW(pack_fp16(std::vector<float>(4, 1e6f), 2, 2), Error);   // fp16 overflow
  EXPECT_THROW(pack_int8_codes(std::vector<std::int8_t>(65537), std::vector<float>(1, 1.0f), 1, 65537),
               Error);
}

TEST(PackedWeights, Int4CodesRoundTripAtOddSizes) {
  std::mt19937 rng(seed());
  std::uniform_int_distribution<int> code(-8, 7);
  for (const std::int64_t group : {32, 64, 128}) {
    for (const std::int64_t cols : {1, 31, 33, 64, 65, 129, 300}) {
      const std::int64_t rows = 3, groups = (cols + group - 1) / group;
      std::vector<std::int8_t> codes(static_cast<std::size_t>(rows * cols));
      for (auto& c : codes) c = static_cast<std::int8_t>(code(rng));
      const auto w = pack_int4_codes(codes, std::vector<float>(static_cast<std::size_t>(rows * groups), 0.5f),
                                     rows, cols, group);
      EXPECT_EQ(unpack_int4_codes(w), codes) << "group " << group << " cols " << cols;
      EXPECT_EQ(w.stride % 64, 0);
      EXPECT_EQ(w.stride % group, 0);
    }
  }
}

TEST(PackedWeights, Int8MatchesTheLibraryQuantizer) {
  // pack_int8 is per-channel symmetric int8 (rule 2): the first row's scale is max|w| / 127.5.
  const std::vector<float> wf = {0.5f, -1.0f, 0.25f, 2.0f, 1.0f, -0.5f};
  const auto w = pack_int8(wf, 2, 3);
  EXPECT_FLOAT_EQ(w.scales[0], 1.0f / 127.5f);
  EXPECT_FLOAT_EQ(w.scales[1], 2.0f / 127.5f);
  EXPECT_EQ(w.row_sums[0], w.codes[0] + w.codes[1] + w.codes[2]);
  const auto back = unpack_to_float(w);
  for (std::size_t i = 0; i < wf.size(); ++i) EXPECT_NEAR(back[i], wf[i], w.scales[i / 3] / 2 * 1.0001f);
}

TEST(Parallel, CoversEveryIndexOnceAndRethrows) {
  for (int threads : {1, 2, 3, 7}) {
    for (std::int64_t n : {0, 1, 15, 16, 17, 1000}) {
      std::vector<int> hits(static_cast<std::size_t>(n), 0);
      parallel_for(n, threads, 16, [&](std::int64_t a, std::int64_t b) {
        EXPECT_TRUE(a % 16 == 0);
        for (std::int64_t i = a; i < b; ++i) ++hits[static_cast<std::size_t>(i)];
      });
      for (int h : hits) ASSERT_EQ(h, 1) << threads << " threads, n " << n;
    }
  }
  EXPECT_THROW(parallel_for(100, 4, 1,
                            [](std::int64_t a, std::int64_t) {
                              if (a > 0) throw Error("part failed");
                            }),
               Error);
}

}  // namespace
}  // namespace qk::kernels
