// FP8 dequantize: every registered variant (one test instance each; those the CPU lacks are skipped)
// against the scalar reference, bit for bit, on all 256 codes of each format under awkward scales (1, a
// fraction, a subnormal, one that overflows the top codes to Inf) and on awkward lengths and unaligned
// pointers; the reference against core/fp8.hpp's decode times the scale.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/variant_test.hpp"
#include "quantkit/core/fp8.hpp"
#include "quantkit/kernels/fp8_kernels.hpp"

namespace qk {
namespace {

using kernels::DequantizeFp8Fn;
using kernels::KernelVariant;
using kernels::test::VariantName;
using kernels::test::VariantTest;

// Bitwise equality, except that any NaN matches any NaN (the payload is not part of the contract).
void expect_same(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " at " << i;
    } else {
      EXPECT_EQ(std::bit_cast<std::uint32_t>(got[i]), std::bit_cast<std::uint32_t>(want[i]))
          << what << " at " << i << ": " << got[i] << " vs " << want[i];
    }
  }
}

constexpr Fp8Format kFormats[] = {Fp8Format::kE4M3, Fp8Format::kE5M2};

constexpr float kAwkwardScales[] = {1.0f, 0.3712f, 1e-40f, 3e38f / 448.0f * 2.0f, -2.5f};

DequantizeFp8Fn reference(Fp8Format f) {
  return f == Fp8Format::kE4M3 ? kernels::dequantize_e4m3_ref : kernels::dequantize_e5m2_ref;
}

TEST(Fp8Kernels, ReferenceIsTheExactDecodeTimesTheScale) {
  std::vector<std::uint8_t> codes(256);
  for (int c = 0; c < 256; ++c) codes[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(c);
  for (const Fp8Format f : kFormats) {
    for (const float scale : kAwkwardScales) {
      std::vector<float> want(256);
      reference(f)(codes.data(), 256, scale, want.data());
      for (int c = 0; c < 256; ++c) {
        const float exact = fp8_to_float(static_cast<std::uint8_t>(c), f) * scale;
        if (std::isnan(exact))
          EXPECT_TRUE(std::isnan(want[static_cast<std::size_t>(c)]));
        else
          EXPECT_EQ(want[static_cast<std::size_t>(c)], exact) << to_string(f) << " code " << c;
      }
    }
  }
}

void expect_every_code_matches(const KernelVariant<DequantizeFp8Fn>& v, Fp8Format f) {
  std::vector<std::uint8_t> codes(256);
  for (int c = 0; c < 256; ++c) codes[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(c);
  for (const float scale : kAwkwardScales) {
    std::vector<float> want(256), got(256);
    reference(f)(codes.data(), 256, scale, want.data());
    std::fill(got.begin(), got.end(), -7.0f);
    v.fn(codes.data(), 256, scale, got.data());
    expect_same(got, want, std::string(v.name) + " " + to_string(f) + " scale " + std::to_string(scale));
  }
}

// Fixed awkward lengths and the variant's tile sizes, inputs shifted off alignment, output misaligned by
// one float between two sentinels.
void expect_awkward_lengths_match(const KernelVariant<DequantizeFp8Fn>& v, Fp8Format f) {
  const unsigned seed = kernels::test::random_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const std::int64_t n :
       kernels::test::with_tile_sizes({0, 1, 7, 8, 9, 15, 16, 17, 63, 257, 1000}, v.tile)) {
    for (const std::size_t shift : {0u, 1u, 3u}) {
      std::vector<std::uint8_t> buf(static_cast<std::size_t>(n) + shift);
      for (auto& b : buf) b = static_cast<std::uint8_t>(byte(gen));
      // One sentinel before the output and one after it.
      std::vector<float> want(static_cast<std::size_t>(n) + 2, -7.0f), got(want.size(), -7.0f);
      reference(f)(buf.data() + shift, n, 0.125f, want.data() + 1);
      v.fn(buf.data() + shift, n, 0.125f, got.data() + 1);  // out misaligned by one float
      expect_same(got, want, std::string(v.name) + " " + to_string(f) + " n=" + std::to_string(n));
      EXPECT_EQ(got[0], -7.0f) << "wrote before the output";
      EXPECT_EQ(got.back(), -7.0f) << "wrote past the output";
    }
  }
}

class Fp8E4m3 : public VariantTest<DequantizeFp8Fn> {};
TEST_P(Fp8E4m3, EveryCodeUnderAwkwardScalesMatchesTheReference) {
  expect_every_code_matches(variant(), Fp8Format::kE4M3);
}
TEST_P(Fp8E4m3, AwkwardLengthsAndUnalignedPointers) {
  expect_awkward_lengths_match(variant(), Fp8Format::kE4M3);
}
INSTANTIATE_TEST_SUITE_P(Fp8Kernels, Fp8E4m3,
                         ::testing::ValuesIn(kernels::dequantize_fp8_variants(Fp8Format::kE4M3)),
                         VariantName());

class Fp8E5m2 : public VariantTest<DequantizeFp8Fn> {};
TEST_P(Fp8E5m2, EveryCodeUnderAwkwardScalesMatchesTheReference) {
  expect_every_code_matches(variant(), Fp8Format::kE5M2);
}
TEST_P(Fp8E5m2, AwkwardLengthsAndUnalignedPointers) {
  expect_awkward_lengths_match(variant(), Fp8Format::kE5M2);
}
INSTANTIATE_TEST_SUITE_P(Fp8Kernels, Fp8E5m2,
                         ::testing::ValuesIn(kernels::dequantize_fp8_variants(Fp8Format::kE5M2)),
                         VariantName());

// The dispatched entry point checks sizes.
TEST(Fp8Kernels, DispatchedEntryPointChecksSizes) {
  std::vector<std::uint8_t> codes(4);
  std::vector<float> out(3);
  EXPECT_THROW(kernels::dequantize_fp8(codes, Fp8Format::kE4M3, 1.0f, out), Error);
}

}  // namespace
}  // namespace qk
