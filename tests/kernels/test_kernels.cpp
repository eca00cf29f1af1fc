// Every registered quantize, dequantize, min/max and conversion variant against its scalar reference:
// identical results on random data, exact ties, clamped, NaN/Inf and subnormal values, at fixed awkward
// sizes and at those of the variant's tile. One test instance per variant; those the CPU lacks are skipped.
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
#include "quantkit/kernels/block_kernels.hpp"
#include "quantkit/kernels/convert_kernels.hpp"
#include "quantkit/kernels/dequantize_kernels.hpp"
#include "quantkit/kernels/fp8_kernels.hpp"
#include "quantkit/kernels/gemm_kernels.hpp"
#include "quantkit/kernels/minmax_kernels.hpp"
#include "quantkit/kernels/quantize_kernels.hpp"
#include "quantkit/kernels/rowwise_kernels.hpp"
#include "variant_test.hpp"

namespace qk::kernels {
namespace {

using test::VariantName;
using test::VariantTest;
using test::with_tile_sizes;

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
void check_variant(const KernelVariant<Fn>& v, Fn ref, const std::vector<RangeCase>& ranges) {
  const auto seed = test::random_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const auto sizes = with_tile_sizes({0, 1, 7, 8, 31, 32, 33, 63, 64, 65, 1000, 4099}, v.tile);
  for (const RangeCase rc : ranges) {
    for (const float inv : {1.0f, 37.25f, 1.0f / 0.0021485486f}) {
      for (const std::int64_t n : sizes) {
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

class QuantizeI8 : public VariantTest<QuantizeToI8Fn> {};
TEST_P(QuantizeI8, MatchesTheReference) {
  check_variant<std::int8_t, QuantizeToI8Fn>(
      variant(), quantize_f32_i8_ref,
      {{-128, 127, 0}, {-128, 127, -7}, {-128, 127, 5}, {-64, 63, 0}, {-8, 7, 2}});
}
INSTANTIATE_TEST_SUITE_P(QuantizeKernels, QuantizeI8, ::testing::ValuesIn(quantize_i8_variants()),
                         VariantName());

class QuantizeU8 : public VariantTest<QuantizeToU8Fn> {};
TEST_P(QuantizeU8, MatchesTheReference) {
  check_variant<std::uint8_t, QuantizeToU8Fn>(
      variant(), quantize_f32_u8_ref, {{0, 255, 0}, {0, 255, 128}, {0, 255, 3}, {0, 127, 64}, {0, 15, 8}});
}
INSTANTIATE_TEST_SUITE_P(QuantizeKernels, QuantizeU8, ::testing::ValuesIn(quantize_u8_variants()),
                         VariantName());

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

class MinMaxF32 : public VariantTest<MinMaxFn> {};
TEST_P(MinMaxF32, MatchesTheReference) {
  const auto seed = test::random_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  const auto& v = variant();
  for (const std::int64_t n : with_tile_sizes({0, 1, 7, 31, 32, 33, 63, 64, 65, 127, 1000, 4099}, v.tile)) {
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
INSTANTIATE_TEST_SUITE_P(MinMaxKernels, MinMaxF32, ::testing::ValuesIn(minmax_variants()), VariantName());

}  // namespace
}  // namespace qk::kernels

namespace qk::kernels {
namespace {

template <class Q, class Fn>
void check_dequantize(const KernelVariant<Fn>& v, Fn ref) {
  const auto seed = test::random_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(std::numeric_limits<Q>::min(), std::numeric_limits<Q>::max());
  const auto sizes = with_tile_sizes({0, 1, 7, 8, 31, 32, 33, 64, 65, 1000}, v.tile);
  for (const std::int32_t zp : {0, 3, -7, 128, 255, -128}) {
    if (zp < std::numeric_limits<Q>::min() || zp > std::numeric_limits<Q>::max()) continue;
    for (const float scale : {1.0f, 0.0021485486f, 3.5e-30f, 1e30f}) {
      for (const std::int64_t n : sizes) {
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

class DequantizeI8 : public VariantTest<DequantizeI8Fn> {};
TEST_P(DequantizeI8, MatchesTheReference) {
  check_dequantize<std::int8_t, DequantizeI8Fn>(variant(), dequantize_i8_f32_ref);
}
INSTANTIATE_TEST_SUITE_P(DequantizeKernels, DequantizeI8, ::testing::ValuesIn(dequantize_i8_variants()),
                         VariantName());

class DequantizeU8 : public VariantTest<DequantizeU8Fn> {};
TEST_P(DequantizeU8, MatchesTheReference) {
  check_dequantize<std::uint8_t, DequantizeU8Fn>(variant(), dequantize_u8_f32_ref);
}
INSTANTIATE_TEST_SUITE_P(DequantizeKernels, DequantizeU8, ::testing::ValuesIn(dequantize_u8_variants()),
                         VariantName());

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

void expect_same_bits_to16(const KernelVariant<F32ToBits16Fn>& v, F32ToBits16Fn ref) {
  const auto x = conversion_inputs();
  std::vector<std::uint16_t> want(x.size()), got(x.size());
  ref(x.data(), static_cast<std::int64_t>(x.size()), want.data());
  for (std::int64_t n : with_tile_sizes({0, 1, 15, static_cast<std::int64_t>(x.size())}, v.tile)) {
    std::fill(got.begin(), got.end(), 0);
    v.fn(x.data(), n, got.data());
    for (std::int64_t i = 0; i < n; ++i)
      ASSERT_EQ(got[i], want[i]) << v.name << " input " << x[i] << " index " << i;
  }
}

// All 65536 patterns (and three more) at once, then the variant's tile sizes from the start, so the SIMD
// steps and the scalar tail both see them.
void expect_same_bits_from16(const KernelVariant<Bits16ToF32Fn>& v, Bits16ToF32Fn ref) {
  std::vector<std::uint16_t> x(65536 + 3);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<std::uint16_t>(i);
  std::vector<float> want(x.size()), got(x.size());
  ref(x.data(), static_cast<std::int64_t>(x.size()), want.data());
  for (std::int64_t n : with_tile_sizes({static_cast<std::int64_t>(x.size())}, v.tile)) {
    std::fill(got.begin(), got.end(), 0.0f);
    v.fn(x.data(), n, got.data());
    for (std::int64_t i = 0; i < n; ++i)
      ASSERT_EQ(std::bit_cast<std::uint32_t>(got[i]), std::bit_cast<std::uint32_t>(want[i]))
          << v.name << " bits " << x[i] << " n " << n;
  }
}

class ToF16 : public VariantTest<F32ToBits16Fn> {};
TEST_P(ToF16, IsBitExact) { expect_same_bits_to16(variant(), f32_to_f16_ref); }
INSTANTIATE_TEST_SUITE_P(ConvertKernels, ToF16, ::testing::ValuesIn(f32_to_f16_variants()), VariantName());

class FromF16 : public VariantTest<Bits16ToF32Fn> {};
TEST_P(FromF16, IsBitExact) { expect_same_bits_from16(variant(), f16_to_f32_ref); }
INSTANTIATE_TEST_SUITE_P(ConvertKernels, FromF16, ::testing::ValuesIn(f16_to_f32_variants()), VariantName());

class ToBf16 : public VariantTest<F32ToBits16Fn> {};
TEST_P(ToBf16, IsBitExact) { expect_same_bits_to16(variant(), f32_to_bf16_ref); }
INSTANTIATE_TEST_SUITE_P(ConvertKernels, ToBf16, ::testing::ValuesIn(f32_to_bf16_variants()), VariantName());

class FromBf16 : public VariantTest<Bits16ToF32Fn> {};
TEST_P(FromBf16, IsBitExact) { expect_same_bits_from16(variant(), bf16_to_f32_ref); }
INSTANTIATE_TEST_SUITE_P(ConvertKernels, FromBf16, ::testing::ValuesIn(bf16_to_f32_variants()),
                         VariantName());

}  // namespace
}  // namespace qk::kernels

namespace qk::kernels {
namespace {

// Row-wise embedding dequantize (8- and 4-bit codes, scale and bias): bit for bit, at fixed dims and at
// the variant's tile sizes, with a sentinel after the row.
void expect_rowwise_matches(const KernelVariant<RowwiseDequantizeFn>& v, RowwiseDequantizeFn ref) {
  const auto seed = test::random_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const std::int64_t dim :
       with_tile_sizes({0, 1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 768}, v.tile)) {
    SCOPED_TRACE(std::string(v.name) + " dim " + std::to_string(dim));
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(dim + 1));
    for (auto& c : codes) c = static_cast<std::uint8_t>(byte(rng));
    for (const auto& [scale, bias] : {std::pair{0.0173f, -1.25f}, std::pair{1.0f, 0.0f},
                                      std::pair{3e-5f, 7.5f}, std::pair{65504.0f, -65504.0f}}) {
      std::vector<float> want(static_cast<std::size_t>(dim) + 1, -7.0f), got(want);
      ref(codes.data(), dim, scale, bias, want.data());
      v.fn(codes.data(), dim, scale, bias, got.data());
      for (std::int64_t d = 0; d <= dim; ++d)
        ASSERT_EQ(std::bit_cast<std::uint32_t>(want[d]), std::bit_cast<std::uint32_t>(got[d])) << "at " << d;
    }
  }
}

class RowwiseU8 : public VariantTest<RowwiseDequantizeFn> {};
TEST_P(RowwiseU8, MatchesTheReferenceBitForBit) {
  expect_rowwise_matches(variant(), rowwise_dequantize_u8_ref);
}
INSTANTIATE_TEST_SUITE_P(RowwiseKernels, RowwiseU8, ::testing::ValuesIn(rowwise_dequantize_u8_variants()),
                         VariantName());

class RowwiseU4 : public VariantTest<RowwiseDequantizeFn> {};
TEST_P(RowwiseU4, MatchesTheReferenceBitForBit) {
  expect_rowwise_matches(variant(), rowwise_dequantize_u4_ref);
}
INSTANTIATE_TEST_SUITE_P(RowwiseKernels, RowwiseU4, ::testing::ValuesIn(rowwise_dequantize_u4_variants()),
                         VariantName());

// The 8-bit row gather: every output row equal, bit for bit, to the reference gather (itself the
// row-wise reference on each row's codes and decoded float16 scale and bias), at awkward dims and batch
// sizes, with repeated ids, the last row flush against the end of its buffer (an overread leaves it: ASan),
// random float16 scale and bias bits (subnormals, infinities; never both NaN: which of two NaNs an add
// returns depends on the operand order), and a sentinel after the output.
class RowwiseGatherU8 : public VariantTest<RowwiseGatherFn> {};
TEST_P(RowwiseGatherU8, MatchesTheReferenceBitForBit) {
  const auto& v = variant();
  const auto seed = test::random_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  const auto is_nan = [](std::uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; };
  constexpr std::int64_t kRows = 37;
  for (const std::int64_t dim : with_tile_sizes({0, 1, 4, 7, 8, 15, 16, 17, 31, 33, 100, 257}, v.tile)) {
    const std::int64_t row_bytes = dim + 4;
    std::vector<std::uint8_t> rows(static_cast<std::size_t>(kRows * row_bytes));
    for (auto& c : rows) c = static_cast<std::uint8_t>(byte(rng));
    for (std::int64_t r = 0; r < kRows; ++r) {
      std::uint8_t* sb = rows.data() + r * row_bytes + dim;
      std::uint16_t scale, bias;
      std::memcpy(&scale, sb, 2);
      std::memcpy(&bias, sb + 2, 2);
      if (is_nan(scale) && is_nan(bias)) sb[3] = 0;  // bias finite (a small or subnormal value)
    }
    for (const std::int64_t n : {0, 1, 7, 8, 9, 33, 100}) {
      SCOPED_TRACE(std::string(v.name) + " dim " + std::to_string(dim) + " n " + std::to_string(n));
      std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
      for (auto& id : ids) id = std::uniform_int_distribution<std::int64_t>(0, kRows - 1)(rng);
      if (n > 2) ids[1] = ids[0], ids.back() = kRows - 1;
      std::vector<float> want(static_cast<std::size_t>(n * dim) + 1, -7.0f), got(want);
      rowwise_gather_u8_ref(rows.data(), row_bytes, ids.data(), n, dim, want.data());
      v.fn(rows.data(), row_bytes, ids.data(), n, dim, got.data());
      for (std::size_t k = 0; k < want.size(); ++k)
        ASSERT_EQ(std::bit_cast<std::uint32_t>(want[k]), std::bit_cast<std::uint32_t>(got[k])) << "at " << k;
    }
  }
}
INSTANTIATE_TEST_SUITE_P(RowwiseKernels, RowwiseGatherU8, ::testing::ValuesIn(rowwise_gather_u8_variants()),
                         VariantName());

}  // namespace
}  // namespace qk::kernels
