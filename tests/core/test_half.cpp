// float16 / bfloat16 conversions: round to nearest even, NaN, Inf, overflow and subnormals.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "quantkit/core/half.hpp"

namespace qk {
namespace {

TEST(Half, EveryHalfRoundTripsThroughFloat) {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    const float f = half_bits_to_float(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_bits_to_float(float_to_half_bits(f)))) << b;
    } else {
      EXPECT_EQ(float_to_half_bits(f), h) << b;
    }
  }
}

// Independent check of rounding: the chosen half is the nearest representable one, ties to even.
TEST(Half, RoundsToNearestEvenOnRandomFloats) {
  const auto seed = static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  // Positive floats below 65520, the first value that rounds to Inf (EdgeValues covers the overflow).
  std::uniform_int_distribution<std::uint32_t> bits(0, 0x477fefffu);
  for (int i = 0; i < 200000; ++i) {
    const float f = std::bit_cast<float>(bits(rng));
    const std::uint16_t h = float_to_half_bits(f);
    const double err = std::abs(static_cast<double>(half_bits_to_float(h)) - f);
    for (int delta : {-1, 1}) {
      const int nb = static_cast<int>(h) + delta;
      if (nb < 0 || nb > 0x7bff) continue;
      const double other =
          std::abs(static_cast<double>(half_bits_to_float(static_cast<std::uint16_t>(nb))) - f);
      ASSERT_LE(err, other) << "x=" << f;
      if (err == other) {
        ASSERT_EQ(h & 1u, 0u) << "tie must go to even, x=" << f;
      }
    }
  }
}

TEST(Half, EdgeValues) {
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half_bits(65519.996f), 0x7bff);
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7c00);  // the tie rounds up to Inf
  EXPECT_EQ(float_to_half_bits(INFINITY), 0x7c00);
  EXPECT_EQ(float_to_half_bits(-INFINITY), 0xfc00);
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24: even
  EXPECT_EQ(float_to_half_bits(std::ldexp(3.0f, -26)), 0x0001);
  EXPECT_EQ(float_to_half_bits(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 * 2^-24: tie, to even (2)
  EXPECT_EQ(float_to_half_bits(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  const std::uint16_t nan = float_to_half_bits(NAN);
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_EQ(half_bits_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_bits_to_float(0x0001), std::ldexp(1.0f, -24));
}

TEST(BFloat16, RoundsToNearestEvenAndKeepsNaN) {
  EXPECT_EQ(float_to_bfloat16_bits(1.0f), 0x3f80);
  // 1 + 2^-8 is the tie between 1.0 and 1 + 2^-7: rounds to even (1.0).
  EXPECT_EQ(float_to_bfloat16_bits(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(float_to_bfloat16_bits(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(float_to_bfloat16_bits(INFINITY), 0x7f80);
  EXPECT_EQ(float_to_bfloat16_bits(3.4e38f), 0x7f80);  // rounds past the largest bfloat16 to Inf
  EXPECT_TRUE(std::isnan(bfloat16_bits_to_float(float_to_bfloat16_bits(NAN))));
  EXPECT_TRUE(std::isnan(bfloat16_bits_to_float(float_to_bfloat16_bits(std::bit_cast<float>(0x7f800001u)))));
  EXPECT_EQ(float_to_bfloat16_bits(std::bit_cast<float>(0x00000001u)), 0x0000);  // tiny subnormal rounds to 0
  EXPECT_EQ(float_to_bfloat16_bits(std::bit_cast<float>(0x00018000u)), 0x0002);  // subnormal tie -> even
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float f = bfloat16_bits_to_float(static_cast<std::uint16_t>(b));
    if (!std::isnan(f)) {
      EXPECT_EQ(float_to_bfloat16_bits(f), b);
    }
  }
}

}  // namespace
}  // namespace qk
