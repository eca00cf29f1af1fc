// FP8 dequantize: every variant against the scalar reference, bit for bit, on all 256 codes of each
// format under awkward scales (1, a fraction, a subnormal, one that overflows the top codes to Inf) and on
// awkward lengths and unaligned pointers; the reference against core/fp8.hpp's decode times the scale.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/variants.hpp"
#include "quantkit/core/fp8.hpp"
#include "quantkit/kernels/fp8_kernels.hpp"

namespace qk {
namespace {

using kernels::test::runnable_variants;

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

TEST(Fp8Kernels, EveryCodeUnderAwkwardScalesMatchesTheReference) {
  std::vector<std::uint8_t> codes(256);
  for (int c = 0; c < 256; ++c) codes[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(c);
  for (const Fp8Format f : kFormats) {
    for (const float scale : {1.0f, 0.3712f, 1e-40f, 3e38f / 448.0f * 2.0f, -2.5f}) {
      std::vector<float> want(256), got(256);
      kernels::dequantize_fp8_variants(f).front().fn(codes.data(), 256, scale, want.data());
      for (int c = 0; c < 256; ++c) {
        const float exact = fp8_to_float(static_cast<std::uint8_t>(c), f) * scale;
        if (std::isnan(exact))
          EXPECT_TRUE(std::isnan(want[static_cast<std::size_t>(c)]));
        else
          EXPECT_EQ(want[static_cast<std::size_t>(c)], exact) << to_string(f) << " code " << c;
      }
      for (const auto& v : runnable_variants(kernels::dequantize_fp8_variants(f))) {
        std::fill(got.begin(), got.end(), -7.0f);
        v.fn(codes.data(), 256, scale, got.data());
        expect_same(got, want, std::string(v.name) + " " + to_string(f) + " scale " + std::to_string(scale));
      }
    }
  }
}

TEST(Fp8Kernels, AwkwardLengthsAndUnalignedPointers) {
  const unsigned seed = static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const Fp8Format f : kFormats) {
    for (const std::int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 63, 257, 1000}) {
      for (const std::size_t shift : {0u, 1u, 3u}) {
        std::vector<std::uint8_t> buf(static_cast<std::size_t>(n) + shift);
        for (auto& b : buf) b = static_cast<std::uint8_t>(byte(gen));
        // One sentinel before the output and one after it.
        std::vector<float> want(static_cast<std::size_t>(n) + 2, -7.0f), got(want.size());
        kernels::dequantize_fp8_variants(f).front().fn(buf.data() + shift, n, 0.125f, want.data() + 1);
        for (const auto& v : runnable_variants(kernels::dequantize_fp8_variants(f))) {
          std::fill(got.begin(), got.end(), -7.0f);
          v.fn(buf.data() + shift, n, 0.125f, got.data() + 1);  // out misaligned by one float
          expect_same(got, {want.begin(), want.end()},
                      std::string(v.name) + " " + to_string(f) + " n=" + std::to_string(n));
          EXPECT_EQ(got[0], -7.0f) << "wrote before the output";
          EXPECT_EQ(got.back(), -7.0f) << "wrote past the output";
        }
      }
    }
  }
  // The dispatched entry point checks sizes.
  std::vector<std::uint8_t> codes(4);
  std::vector<float> out(3);
  EXPECT_THROW(kernels::dequantize_fp8(codes, Fp8Format::kE4M3, 1.0f, out), Error);
}

}  // namespace
}  // namespace qk
