// FP8 E4M3 / E5M2: every one of the 256 codes decoded against the OCP definition, every representable value
// round-tripped, encoding against a brute-force nearest-code search (ties to even), saturation and NaN, and
// scaled per-channel quantization.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "quantkit/core/fp8.hpp"

namespace qk {
namespace {

// The OCP FP8 definition, written independently of the library: sign, exponent field, mantissa field.
double reference_decode(std::uint8_t bits, int e_bits, int m_bits, int bias, bool ieee_specials) {
  const int sign = bits >> 7;
  const int e = (bits >> m_bits) & ((1 << e_bits) - 1);
  const int m = bits & ((1 << m_bits) - 1);
  const int e_max = (1 << e_bits) - 1;
  double v;
  if (ieee_specials && e == e_max) {
    v = m == 0 ? INFINITY : NAN;
  } else if (!ieee_specials && e == e_max && m == (1 << m_bits) - 1) {
    v = NAN;
  } else if (e == 0) {
    v = m / double(1 << m_bits) * std::pow(2.0, 1 - bias);
  } else {
    v = (1 + m / double(1 << m_bits)) * std::pow(2.0, e - bias);
  }
  return sign ? -v : v;
}

double reference(std::uint8_t b, Fp8Format f) {
  return f == Fp8Format::kE4M3 ? reference_decode(b, 4, 3, 7, false) : reference_decode(b, 5, 2, 15, true);
}

TEST(Fp8, EveryCodeDecodesAsTheOcpDefinition) {
  for (const Fp8Format f : {Fp8Format::kE4M3, Fp8Format::kE5M2}) {
    for (int c = 0; c < 256; ++c) {
      const auto b = static_cast<std::uint8_t>(c);
      const double want = reference(b, f);
      const float got = fp8_to_float(b, f);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got)) << to_string(f) << " code " << c;
      } else {
        EXPECT_EQ(static_cast<double>(got), want) << to_string(f) << " code " << c;
        EXPECT_EQ(std::signbit(got), c >= 128) << c;
      }
    }
  }
  // Landmarks from the OCP specification.
  EXPECT_EQ(fp8_to_float(0x7e, Fp8Format::kE4M3), 448.0f);
  EXPECT_EQ(fp8_to_float(0x38, Fp8Format::kE4M3), 1.0f);
  EXPECT_EQ(fp8_to_float(0x08, Fp8Format::kE4M3), 0x1p-6f);  // smallest normal
  EXPECT_EQ(fp8_to_float(0x01, Fp8Format::kE4M3), 0x1p-9f);  // smallest subnormal
  EXPECT_TRUE(std::isnan(fp8_to_float(0x7f, Fp8Format::kE4M3)));
  EXPECT_EQ(fp8_to_float(0x7b, Fp8Format::kE5M2), 57344.0f);
  EXPECT_EQ(fp8_to_float(0x3c, Fp8Format::kE5M2), 1.0f);
  EXPECT_EQ(fp8_to_float(0x01, Fp8Format::kE5M2), 0x1p-16f);
  EXPECT_EQ(fp8_to_float(0x7c, Fp8Format::kE5M2), INFINITY);
  EXPECT_EQ(fp8_to_float(0xfc, Fp8Format::kE5M2), -INFINITY);
  EXPECT_TRUE(std::isnan(fp8_to_float(0x7d, Fp8Format::kE5M2)));
}

TEST(Fp8, EveryFiniteValueRoundTrips) {
  for (const Fp8Format f : {Fp8Format::kE4M3, Fp8Format::kE5M2}) {
    int finite = 0;
    for (int c = 0; c < 256; ++c) {
      const float v = fp8_to_float(static_cast<std::uint8_t>(c), f);
      if (!std::isfinite(v)) continue;
      ++finite;
      EXPECT_EQ(float_to_fp8(v, f), c) << to_string(f) << " value " << v;
    }
    EXPECT_EQ(finite, f == Fp8Format::kE4M3 ? 254 : 248);
  }
}

// The nearest finite code by search, ties to the code with an even mantissa (its lowest bit clear);
// beyond the largest finite value, that value (saturation).
std::uint8_t brute_force_encode(float x, Fp8Format f) {
  int best = -1;
  double best_err = INFINITY;
  for (int c = 0; c < 256; ++c) {
    const float v = fp8_to_float(static_cast<std::uint8_t>(c), f);
    if (!std::isfinite(v) || std::signbit(v) != std::signbit(x)) continue;
    const double err = std::fabs(static_cast<double>(v) - static_cast<double>(x));
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best = c;
      best_err = err;
    }
  }
  return static_cast<std::uint8_t>(best);
}

TEST(Fp8, EncodingIsNearestEvenAndSaturating) {
  std::mt19937 gen(static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed()));
  SCOPED_TRACE("seed " + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  for (const Fp8Format f : {Fp8Format::kE4M3, Fp8Format::kE5M2}) {
    std::vector<float> xs;
    // Every midpoint between neighbouring codes (the ties) and a hair either side of it.
    for (int c = 0; c < 127; ++c) {
      const float lo = fp8_to_float(static_cast<std::uint8_t>(c), f);
      const float hi = fp8_to_float(static_cast<std::uint8_t>(c + 1), f);
      if (!std::isfinite(lo) || !std::isfinite(hi)) continue;
      const float mid = (lo + hi) / 2;
      for (const float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
        xs.push_back(x);
        xs.push_back(-x);
      }
    }
    // Random magnitudes over the whole range, beyond it, and deep in the subnormals.
    std::uniform_real_distribution<float> log2mag(-20.0f, 18.0f);
    for (int i = 0; i < 20000; ++i) xs.push_back((i % 2 ? -1 : 1) * std::exp2(log2mag(gen)));
    for (const float x : xs)
      EXPECT_EQ(float_to_fp8(x, f), brute_force_encode(x, f)) << to_string(f) << " " << x;
    const Fp8Traits t = fp8_traits(f);
    for (const float big :
         {1e30f, INFINITY, std::nextafter(t.max_finite, INFINITY), t.max_finite * 1.0625f}) {
      EXPECT_EQ(fp8_to_float(float_to_fp8(big, f), f), t.max_finite) << big;
      EXPECT_EQ(fp8_to_float(float_to_fp8(-big, f), f), -t.max_finite) << big;
    }
    EXPECT_EQ(float_to_fp8(NAN, f), t.nan_code);
    EXPECT_EQ(float_to_fp8(-NAN, f), 0x80 | t.nan_code);
    EXPECT_EQ(float_to_fp8(0.0f, f), 0x00);
    EXPECT_EQ(float_to_fp8(-0.0f, f), 0x80);
    EXPECT_EQ(float_to_fp8(1e-30f, f), 0x00);  // below half the smallest subnormal: zero
  }
  // Specific ties: E4M3 1.0625 lies between 1.0 (mantissa 0, even) and 1.125: rounds to 1.0;
  // 1.1875 lies between 1.125 (odd) and 1.25 (even): rounds to 1.25.
  EXPECT_EQ(fp8_to_float(float_to_fp8(1.0625f, Fp8Format::kE4M3), Fp8Format::kE4M3), 1.0f);
  EXPECT_EQ(fp8_to_float(float_to_fp8(1.1875f, Fp8Format::kE4M3), Fp8Format::kE4M3), 1.25f);
  // 464 is the tie between 448 and the 480 that E4M3 lacks: saturates to 448.
  EXPECT_EQ(fp8_to_float(float_to_fp8(464.0f, Fp8Format::kE4M3), Fp8Format::kE4M3), 448.0f);
}

TEST(Fp8, ScaledPerChannelQuantization) {
  // Two channels of very different range: each channel's largest magnitude lands on the largest code.
  const std::vector<float> x = {0.5f, -1.0f, 0.25f, 0.001f, 100.0f, -300.0f, 7.0f, 0.0f};
  const ChannelLayout layout{2, 4, 8};
  for (const Fp8Format f : {Fp8Format::kE4M3, Fp8Format::kE5M2}) {
    const Fp8Quantized q = quantize_fp8(x, layout, f);
    const float max_finite = fp8_traits(f).max_finite;
    EXPECT_EQ(q.scale[0], 1.0f / max_finite);
    EXPECT_EQ(q.scale[1], 300.0f / max_finite);
    EXPECT_EQ(std::fabs(fp8_to_float(q.codes[1], f)), max_finite);
    EXPECT_EQ(std::fabs(fp8_to_float(q.codes[5], f)), max_finite);
    const std::vector<float> back = dequantize_fp8(q, layout);
    // Relative error of a normal value is at most half a mantissa step, 2^-(M+1).
    const double bound = std::ldexp(1.0, -(fp8_traits(f).mantissa_bits + 1));
    for (const std::size_t i : {0u, 1u, 2u, 4u, 5u, 6u})
      EXPECT_LE(std::fabs(back[i] - x[i]), bound * std::fabs(x[i]) * 1.0001);
    EXPECT_EQ(back[7], 0.0f);
  }
  const std::vector<float> subnormal = {1e-44f, 0.0f, -3e-45f, 0.0f};
  for (const Fp8Format f : {Fp8Format::kE4M3, Fp8Format::kE5M2}) {
    const Fp8Quantized q = quantize_fp8(subnormal, ChannelLayout{1, 4, 4}, f);
    EXPECT_GT(q.scale[0], 0.0f);
    for (const float v : dequantize_fp8(q, ChannelLayout{1, 4, 4})) EXPECT_TRUE(std::isfinite(v));
  }
  const std::vector<float> zeros(4, 0.0f);
  EXPECT_EQ(quantize_fp8(zeros, ChannelLayout{1, 4, 4}, Fp8Format::kE4M3).scale[0], 1.0f);
  std::vector<float> bad = {1.0f, NAN};
  EXPECT_THROW(quantize_fp8(bad, ChannelLayout{1, 2, 2}, Fp8Format::kE4M3), Error);
  EXPECT_THROW(quantize_fp8(bad, ChannelLayout{1, 3, 3}, Fp8Format::kE4M3), Error);
}

}  // namespace
}  // namespace qk
