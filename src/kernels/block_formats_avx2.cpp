// AVX2 dequantize and GEMV of the NF4 and double-quantized INT4 blocks (compiled with -mavx2 -mfma -mf16c
// only). Eight codes at a time: nibbles widened to int32; NF4 looks its levels up with two 8-entry
// permutes and a blend on bit 3; INT4 converts code - 8 exactly. One multiply per value, as the reference.
#include <immintrin.h>

#include <cstring>

#include "deinterleave.hpp"
#include "quantkit/kernels/block_kernels.hpp"

namespace qk::kernels {

namespace {

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

void dequantize_nf4_avx2(const BlockNf4* blocks, std::int64_t n, float* out) {
  const Nf4Table table;
  for (std::int64_t b = 0; b < n / BlockNf4::kWeights; ++b) {
    const __m256 absmax = _mm256_set1_ps(blocks[b].absmax);
    for (std::int64_t j = 0; j < BlockNf4::kWeights; j += 8)
      _mm256_storeu_ps(out + b * BlockNf4::kWeights + j,
                       _mm256_mul_ps(nf4_levels8(nibbles8(blocks[b].codes, j), table), absmax));
  }
}

void dequantize_q4dq_avx2(const BlockQ4DQ* blocks, std::int64_t n, float* out) {
  for (std::int64_t b = 0; b < n / BlockQ4DQ::kWeights; ++b) {
    for (std::int64_t j = 0; j < BlockQ4DQ::kWeights; j += 8) {
      const __m256 scale =
          _mm256_set1_ps(static_cast<float>(blocks[b].scales[j / BlockQ4DQ::kGroup]) * blocks[b].super_scale);
      _mm256_storeu_ps(out + b * BlockQ4DQ::kWeights + j,
                       _mm256_mul_ps(int4_values8(nibbles8(blocks[b].codes, j)), scale));
    }
  }
}

// GEMV: x is split once per call into its even and odd elements (block_kernels.hpp, deinterleave), so
// that a byte's low nibbles meet the even x and its high nibbles the odd x with no shuffle of the codes:
// eight bytes give sixteen weights, two lookups, two FMAs into independent partial sums.
void gemv_nf4_avx2(const BlockNf4* w, std::int64_t rows, std::int64_t cols, const float* x, float* y) {
  const Nf4Table table;
  const DeinterleavedX xs(x, cols);
  const std::int64_t per_row = cols / BlockNf4::kWeights;
  constexpr std::int64_t kHalf = BlockNf4::kWeights / 2;
  for (std::int64_t r = 0; r < rows; ++r) {
    __m256 acc = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < per_row; ++b) {
      const BlockNf4& blk = w[r * per_row + b];
      const float* even = xs.even() + b * kHalf;
      const float* odd = xs.odd() + b * kHalf;
      __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (std::int64_t j = 0; j < kHalf; j += 16) {
        for (int k = 0; k < 2; ++k) {
          const __m256i bytes = bytes8(blk.codes + j + 8 * k);
          s[2 * k] = _mm256_fmadd_ps(nf4_levels8(bytes, table), _mm256_loadu_ps(even + j + 8 * k), s[2 * k]);
          s[2 * k + 1] = _mm256_fmadd_ps(nf4_levels8(_mm256_srli_epi32(bytes, 4), table),
                                         _mm256_loadu_ps(odd + j + 8 * k), s[2 * k + 1]);
        }
      }
      const __m256 sum = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
      acc = _mm256_fmadd_ps(sum, _mm256_set1_ps(blk.absmax), acc);
    }
    y[r] = hsum(acc);
  }
}

void gemv_q4dq_avx2(const BlockQ4DQ* w, std::int64_t rows, std::int64_t cols, const float* x, float* y) {
  const DeinterleavedX xs(x, cols);
  const std::int64_t per_row = cols / BlockQ4DQ::kWeights;
  constexpr std::int64_t kHalf = BlockQ4DQ::kWeights / 2, kGroupBytes = BlockQ4DQ::kGroup / 2;
  for (std::int64_t r = 0; r < rows; ++r) {
    __m256 acc = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < per_row; ++b) {
      const BlockQ4DQ& blk = w[r * per_row + b];
      const float* even = xs.even() + b * kHalf;
      const float* odd = xs.odd() + b * kHalf;
      for (std::int64_t g = 0; g < BlockQ4DQ::kWeights / BlockQ4DQ::kGroup; ++g) {
        __m256 s[4];
        for (int k = 0; k < 2; ++k) {  // a group of 32 weights is 16 bytes: two runs of 8
          const std::int64_t at = g * kGroupBytes + 8 * k;
          const __m256i bytes = bytes8(blk.codes + at);
          s[2 * k] = _mm256_mul_ps(int4_values8(_mm256_and_si256(bytes, _mm256_set1_epi32(0xF))),
                                   _mm256_loadu_ps(even + at));
          s[2 * k + 1] = _mm256_mul_ps(int4_values8(_mm256_srli_epi32(bytes, 4)), _mm256_loadu_ps(odd + at));
        }
        const __m256 sum = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
        acc = _mm256_fmadd_ps(sum, _mm256_set1_ps(static_cast<float>(blk.scales[g]) * blk.super_scale), acc);
      }
    }
    y[r] = hsum(acc);
  }
}

}  // namespace qk::kernels
