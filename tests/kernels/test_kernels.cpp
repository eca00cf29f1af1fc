// Every compiled quantize kernel against the scalar reference: identical codes on random data, exact
// ties, clamped, NaN/Inf and subnormal values, at awkward sizes. Variants the CPU lacks are skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "quantkit/core/half.hpp"
#include "quantkit/kernels/convert_kernels.hpp"
#include "quantkit/kernels/dequantize_kernels.hpp"
#include "quantkit/kernels/minmax_kernels.hpp"
#include "quantkit/kernels/quantize_kernels.hpp"
#include "variants.hpp"

namespace qk::kernels {
namespace {

using test::runnable_variants;

struct RangeCase {
  std::int32_t qmin, qmax, zero_point;
};

std::vector<float> awkward_values(std::size_t n, float inv, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 200.0f / inv);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (i % 9) {
      case 0:
        x[i] = (std::floor(dist(rng) * inv) + 0.5f) / inv;
        break;  // near or at ties
      case 1:
        x[i] = std::numeric_limits<float>::quiet_NaN();
        break;
      case 2:
        x[i] = (i % 2) ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
        break;
      case 3:
        x[i] = std::numeric_limits<float>::denorm_min();
        break;
      case 4:
        x[i] = (i % 2) ? 1e10f : -1e10f;
        break;
      default:
        x[i] = dist(rng);
        break;
    }
  }
  return x;
}

template <class Q, class Fn>
void check_variants(std::span<const KernelVariant<Fn>> variants, Fn ref,
                    const std::vector<RangeCase>& ranges) {
  const auto seed = static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const auto runnable = runnable_variants(variants);
  ASSERT_FALSE(runnable.empty());
  for (const auto& v : runnable) {
    for (const RangeCase rc : ranges) {
      for (const float inv : {1.0f, 37.25f, 1.0f / 0.0021485486f}) {
        for (const std::int64_t n : {0, 1, 7, 8, 31, 32, 33, 63, 64, 65, 1000, 4099}) {
          const auto x = awkward_values(static_cast<std::size_t>(n), inv, rng);
          const QuantizeRun run{inv, rc.zero_point, rc.qmin, rc.qmax};
          std::vector<Q> want(static_cast<std::size_t>(n)), got(static_cast<std::size_t>(n));
          ref(x.data(), n, run, want.data());
          v.fn(x.data(), n, run, got.data());
          ASSERT_EQ(got, want) << v.name << " n=" << n << " range [" << rc.qmin << ", " << rc.qmax << "] zp "
                               << rc.zero_point;
        }
      }
    }
  }
}

TEST(QuantizeKernels, Int8VariantsMatchTheReference) {
  check_variants<std::int8_t, QuantizeToI8Fn>(
      quantize_i8_variants(), quantize_f32_i8_ref,
      {{-128, 127, 0}, {-128, 127, -7}, {-128, 127, 5}, {-64, 63, 0}, {-8, 7, 2}});
}

TEST(QuantizeKernels, Uint8VariantsMatchTheReference) {
  check_variants<std::uint8_t, QuantizeToU8Fn>(
      quantize_u8_variants(), quantize_f32_u8_ref,
      {{0, 255, 0}, {0, 255, 128}, {0, 255, 3}, {0, 127, 64}, {0, 15, 8}});
}

TEST(QuantizeKernels, ReferenceFollowsRuleFive) {
  // x * inv = 127.5 rounds to 128 (even) and clamps; NaN -> qmin; the zero point is added after rounding.
  const float x[] = {0.273939937f, std::numeric_limits<float>::quiet_NaN(), 2.5f, -2.5f};
  std::int8_t q[4];
  quantize_f32_i8_ref(x, 1, {1.0f / 0.00214854861f, 0, -128, 127}, q);
  EXPECT_EQ(q[0], 127);
  quantize_f32_i8_ref(x + 1, 3, {1.0f, 1, -128, 127}, q + 1);
  EXPECT_EQ(q[1], -128);
  EXPECT_EQ(q[2], 3);   // rint(2.5) = 2, + 1
  EXPECT_EQ(q[3], -1);  // rint(-2.5) = -2, + 1
}

TEST(Dispatch, HonoursTheEnvironmentOverride) {
  const char* forced = std::getenv("QK_ISA");
  std::printf("detected %s, active %s\n", to_string(detected_isa()), to_string(active_isa()));
  EXPECT_LE(static_cast<int>(active_isa()), static_cast<int>(detected_isa()));
  if (forced != nullptr && std::strcmp(forced, "scalar") == 0) {
    EXPECT_EQ(active_isa(), Isa::kScalar);
  } else if (forced == nullptr) {
    EXPECT_EQ(active_isa(), detected_isa());
  }
}

}  // namespace
}  // namespace qk::kernels

namespace qk::kernels {
namespace {

TEST(MinMaxKernels, VariantsMatchTheReference) {
  const auto seed = static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  const auto runnable = runnable_variants(minmax_variants());
  ASSERT_FALSE(runnable.empty());
  for (const auto& v : runnable) {
    for (const std::int64_t n : {0, 1, 7, 31, 32, 33, 63, 64, 65, 127, 1000, 4099}) {
      std::vector<float> x(static_cast<std::size_t>(n));
      for (float& f : x) f = dist(rng);
      if (n > 2) {
        x[static_cast<std::size_t>(n - 1)] = 1e30f;  // extremes in the scalar tail too
        x[static_cast<std::size_t>(n / 2)] = -1e30f;
      }
      float want_lo = INFINITY, want_hi = -INFINITY, got_lo = INFINITY, got_hi = -INFINITY;
      minmax_f32_ref(x.data(), n, &want_lo, &want_hi);
      v.fn(x.data(), n, &got_lo, &got_hi);
      ASSERT_EQ(got_lo, want_lo) << v.name << " n=" << n;
      ASSERT_EQ(got_hi, want_hi) << v.name << " n=" << n;
      // Running update: a bound already outside the data stays.
      float lo = -1e31f, hi = 1e31f;
      v.fn(x.data(), n, &lo, &hi);
      EXPECT_EQ(lo, -1e31f);
      EXPECT_EQ(hi, 1e31f);
    }
  }
}

}  // namespace
}  // namespace qk::kernels

namespace qk::kernels {
namespace {

template <class Q, class Fn>
void check_dequantize(std::span<const KernelVariant<Fn>> variants, Fn ref) {
  const auto seed = static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(std::numeric_limits<Q>::min(), std::numeric_limits<Q>::max());
  const auto runnable = runnable_variants(variants);
  ASSERT_FALSE(runnable.empty());
  for (const auto& v : runnable) {
    for (const std::int32_t zp : {0, 3, -7, 128, 255, -128}) {
      if (zp < std::numeric_limits<Q>::min() || zp > std::numeric_limits<Q>::max()) continue;
      for (const float scale : {1.0f, 0.0021485486f, 3.5e-30f, 1e30f}) {
        for (const std::int64_t n : {0, 1, 7, 8, 31, 32, 33, 64, 65, 1000}) {
          std::vector<Q> q(static_cast<std::size_t>(n));
          for (auto& c : q) c = static_cast<Q>(code(rng));
          if (n >= 2) {
            q[0] = std::numeric_limits<Q>::min();
            q[1] = std::numeric_limits<Q>::max();
          }
          std::vector<float> want(q.size()), got(q.size());
          ref(q.data(), n, scale, zp, want.data());
          v.fn(q.data(), n, scale, zp, got.data());
          ASSERT_EQ(got, want) << v.name << " n=" << n << " zp " << zp << " scale " << scale;
        }
      }
    }
  }
}

TEST(DequantizeKernels, Int8VariantsMatchTheReference) {
  check_dequantize<std::int8_t, DequantizeI8Fn>(dequantize_i8_variants(), dequantize_i8_f32_ref);
}

TEST(DequantizeKernels, Uint8VariantsMatchTheReference) {
  check_dequantize<std::uint8_t, DequantizeU8Fn>(dequantize_u8_variants(), dequantize_u8_f32_ref);
}

}  // namespace
}  // namespace qk::kernels

namespace qk::kernels {
namespace {

// Every binary16 and bfloat16 pattern (NaNs, Infs, subnormals, zeros) back to float, and the floats
// they give plus neighbours, ties and out-of-range values to 16 bits: identical bits to the reference.
std::vector<float> conversion_inputs() {
  std::vector<float> x;
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = half_bits_to_float(static_cast<std::uint16_t>(h));
    const float b = bfloat16_bits_to_float(static_cast<std::uint16_t>(h));
    for (float v : {f, b}) {
      x.push_back(v);
      x.push_back(std::nextafter(v, std::numeric_limits<float>::infinity()));
      x.push_back(std::nextafter(v, -std::numeric_limits<float>::infinity()));
    }
  }
  for (float v :
       {65504.0f, 65519.99f, 65520.0f, 1e30f, -1e30f, 5.960464477539063e-08f, 2.9802322387695312e-08f})
    x.push_back(v);
  x.push_back(std::bit_cast<float>(0x7f800001u));  // signalling NaN
  x.push_back(std::bit_cast<float>(0xffc12345u));  // negative quiet NaN with a payload
  return x;
}

template <class Fn>
void expect_same_bits_to16(std::span<const KernelVariant<Fn>> variants) {
  const auto x = conversion_inputs();
  std::vector<std::uint16_t> want(x.size()), got(x.size());
  variants.front().fn(x.data(), static_cast<std::int64_t>(x.size()), want.data());
  for (const auto& v : runnable_variants(variants)) {
    for (std::int64_t n :
         {std::int64_t{0}, std::int64_t{1}, std::int64_t{15}, static_cast<std::int64_t>(x.size())}) {
      std::fill(got.begin(), got.end(), 0);
      v.fn(x.data(), n, got.data());
      for (std::int64_t i = 0; i < n; ++i)
        ASSERT_EQ(got[i], want[i]) << v.name << " input " << x[i] << " index " << i;
    }
  }
}

template <class Fn>
void expect_same_bits_from16(std::span<const KernelVariant<Fn>> variants) {
  std::vector<std::uint16_t> x(65536 + 3);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<std::uint16_t>(i);
  std::vector<float> want(x.size()), got(x.size());
  variants.front().fn(x.data(), static_cast<std::int64_t>(x.size()), want.data());
  for (const auto& v : runnable_variants(variants)) {
    v.fn(x.data(), static_cast<std::int64_t>(x.size()), got.data());
    for (std::size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(std::bit_cast<std::uint32_t>(got[i]), std::bit_cast<std::uint32_t>(want[i]))
          << v.name << " bits " << x[i];
  }
}

TEST(ConvertKernels, Float32ToHalfIsBitExact) { expect_same_bits_to16(f32_to_f16_variants()); }
TEST(ConvertKernels, HalfToFloat32IsBitExact) { expect_same_bits_from16(f16_to_f32_variants()); }
TEST(ConvertKernels, Float32ToBfloat16IsBitExact) { expect_same_bits_to16(f32_to_bf16_variants()); }
TEST(ConvertKernels, Bfloat16ToFloat32IsBitExact) { expect_same_bits_from16(bf16_to_f32_variants()); }

}  // namespace
}  // namespace qk::kernels
