// The full range rule (ggml's Q4_0) and float16 scales, beside PyTorch's rule (golden: test_golden.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "quantkit/quantkit.hpp"

namespace qk {
namespace {

QuantSpec int4(RangeRule rule = RangeRule::kPyTorch, ScaleDType dtype = ScaleDType::kFloat32) {
  QuantSpec s;
  s.bits = 4;
  s.is_signed = true;
  s.scheme = Scheme::kSymmetric;
  s.range_rule = rule;
  s.scale_dtype = dtype;
  return s;
}

float round_trip(float x, const QParams& p, const QuantSpec& spec) {
  const std::int64_t q = quantize_value<float>(x, inverse_scale<float>(p.scale), p.zero_point, spec.range());
  return dequantize_value<float>(q, p.scale, p.zero_point);
}

TEST(RangeRule, FullMapsTheLargestMagnitudeToTheLowestCodeWithItsSign) {
  const QuantSpec spec = int4(RangeRule::kFull);
  // Largest magnitude positive: the scale is negative and +amax is code -8, exactly.
  const QParams pos = choose_qparams(-1.0f, 2.0f, spec);
  EXPECT_EQ(pos.scale, 2.0f / -8.0f);
  EXPECT_EQ(pos.zero_point, 0);
  EXPECT_EQ(quantize_value<float>(2.0f, inverse_scale<float>(pos.scale), 0, spec.range()), -8);
  EXPECT_EQ(round_trip(2.0f, pos, spec), 2.0f);
  // Largest magnitude negative: a positive scale, -amax is code -8.
  const QParams neg = choose_qparams(-3.0f, 1.0f, spec);
  EXPECT_EQ(neg.scale, 3.0f / 8.0f);
  EXPECT_EQ(round_trip(-3.0f, neg, spec), -3.0f);
  // All zero: the scale floor, as PyTorch's rule has.
  EXPECT_EQ(choose_qparams(0.0f, 0.0f, spec).scale, kScaleEps);
}

TEST(RangeRule, PyTorchLosesTheTopHalfStepFullDoesNot) {
  // A constant positive group: PyTorch's rule (amax / 7.5) rounds +amax to 8, clamps to 7, and comes out
  // 7 / 7.5 of the value (6.7% low); the full rule gives it back exactly.
  const float c = 0.3f;
  const QParams torch = choose_qparams(c, c, int4());
  EXPECT_NEAR(round_trip(c, torch, int4()), c * 7.0f / 7.5f, 1e-6f);
  EXPECT_EQ(round_trip(c, choose_qparams(c, c, int4(RangeRule::kFull)), int4(RangeRule::kFull)), c);
}

TEST(RangeRule, FullHasLowerErrorOnGaussianGroups) {
  std::mt19937 gen(7);
  std::normal_distribution<float> d;
  double err_torch = 0, err_full = 0;
  for (int g = 0; g < 2000; ++g) {
    std::vector<float> x(32);
    for (float& v : x) v = d(gen);
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    const QParams pt = choose_qparams(*lo, *hi, int4());
    const QParams pf = choose_qparams(*lo, *hi, int4(RangeRule::kFull));
    for (const float v : x) {
      err_torch += std::pow(v - round_trip(v, pt, int4()), 2);
      err_full += std::pow(v - round_trip(v, pf, int4(RangeRule::kFull)), 2);
    }
  }
  EXPECT_LT(err_full, err_torch);
}

TEST(RangeRule, FullNeedsSignedSymmetricCodes) {
  QuantSpec s = int4(RangeRule::kFull);
  s.scheme = Scheme::kAffine;
  EXPECT_THROW(s.validate(), Error);
  s = int4(RangeRule::kFull);
  s.is_signed = false;
  EXPECT_THROW(s.validate(), Error);
}

TEST(ScaleDType, Float16ScalesAreRoundedBeforeTheCodes) {
  for (const RangeRule rule : {RangeRule::kPyTorch, RangeRule::kFull}) {
    const QuantSpec spec = int4(rule, ScaleDType::kFloat16);
    const QParams p = choose_qparams(-0.123456f, 0.987654f, spec);
    EXPECT_EQ(half_bits_to_float(float_to_half_bits(p.scale)), p.scale);  // a float16 value
    const QParams f32 = choose_qparams(-0.123456f, 0.987654f, int4(rule));
    EXPECT_NE(p.scale, f32.scale);
    EXPECT_NEAR(p.scale, f32.scale, std::fabs(f32.scale) * 1e-3);
  }
  // Affine: the zero point comes from the rounded scale.
  QuantSpec affine = int4(RangeRule::kPyTorch, ScaleDType::kFloat16);
  affine.scheme = Scheme::kAffine;
  const QParams a = choose_qparams(-0.3f, 1.7f, affine);
  EXPECT_EQ(a.zero_point, static_cast<std::int32_t>(-8 - std::nearbyint(-0.3f / a.scale)));
}

TEST(ScaleDType, Float16RangeLimits) {
  const QuantSpec spec = int4(RangeRule::kPyTorch, ScaleDType::kFloat16);
  EXPECT_THROW(choose_qparams(-1e6f, 1e6f, spec), Error);  // scale 1.3e5 > 65504
  EXPECT_EQ(choose_qparams(0.0f, 0.0f, spec).scale, kScaleEps);  // the floor is a float16 subnormal
  // Given parameters must already be float16 values.
  QuantParams params{spec, {0.1f}, {0}};
  EXPECT_THROW(check_params(params, ChannelLayout{1, 1, 4}), Error);
  params.scale[0] = stored_scale(0.1f, spec);
  EXPECT_NO_THROW(check_params(params, ChannelLayout{1, 1, 4}));
}

}  // namespace
}  // namespace qk
