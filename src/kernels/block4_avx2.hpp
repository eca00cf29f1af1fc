// Helpers of the AVX2 NF4 and Q4DQ kernels (dequantize_*_avx2.cpp, gemv_*_avx2.cpp): eight codes at a
// time, nibbles widened to int32; NF4 looks its levels up with two 8-entry permutes and a blend on bit 3;
// INT4 converts code - 8 exactly. Internal linkage on purpose (as simd_x86.hpp): included only by files
// compiled with the AVX2 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quantkit/core/block_formats.hpp"

namespace {

using qk::kNf4Levels;

// Codes 8k..8k+7 of a block's packed nibbles as int32 (element 2i is byte i's low nibble).
inline __m256i nibbles8(const std::uint8_t* codes, std::int64_t first) {
  int four;  // 4 bytes = 8 codes
  std::memcpy(&four, codes + first / 2, sizeof four);
  const __m128i packed = _mm_cvtsi32_si128(four);
  const __m128i nib = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(packed, nib);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), nib);
  return _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
}

// The 16 levels in two registers, loaded once per kernel call (not per lookup).
struct Nf4Table {
  __m256 lo = _mm256_loadu_ps(&kNf4Levels[0]);
  __m256 hi = _mm256_loadu_ps(&kNf4Levels[8]);
};

// Eight code bytes widened to int32 (each holds two nibbles).
inline __m256i bytes8(const std::uint8_t* p) {
  long long eight;
  std::memcpy(&eight, p, sizeof eight);
  return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(eight));
}

// The level of each lane's low nibble (higher bits ignored: the permutes read bits 0-2, the blend bit 3).
inline __m256 nf4_levels8(__m256i idx, const Nf4Table& t) {
  const __m256 lo = t.lo, hi = t.hi;
  const __m256 from_lo = _mm256_permutevar8x32_ps(lo, idx);  // uses the low 3 bits
  const __m256 from_hi = _mm256_permutevar8x32_ps(hi, idx);
  const __m256 upper = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));  // bit 3 -> sign bit, blend mask
  return _mm256_blendv_ps(from_lo, from_hi, upper);
}

inline __m256 int4_values8(__m256i idx) {
  return _mm256_cvtepi32_ps(_mm256_sub_epi32(idx, _mm256_set1_epi32(8)));
}

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

}  // namespace
