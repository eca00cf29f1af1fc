// GEMV on ggml's Q8_0 and Q4_0 blocks (AVX2), as ggml's own AVX2 dot products compute them: per block the 32
// int8 products summed exactly (the sign of one operand moved onto the other so that maddubs multiplies
// unsigned by signed without saturating: |q| <= 127 for Q8_0 activations, so a pair sums to at most
// 2 * 127 * 127), then one fused multiply-add of the block's scale product into eight float lanes. The
// float sums differ from the scalar reference's order by rounding only (kernels/ggml_gemv.hpp's bound).
#include <immintrin.h>

#include "quantkit/core/half.hpp"
#include "quantkit/kernels/ggml_gemv.hpp"
#include "simd_x86.hpp"

namespace qk::kernels {

namespace {

// Eight float lanes of sum_j a_j * b_j over 32 signed bytes, grouped in fours (exact int32 first).
inline __m256 dot32(__m256i a, __m256i b) {
  const __m256i ua = _mm256_sign_epi8(a, a);  // |a|
  const __m256i sb = _mm256_sign_epi8(b, a);  // b with a's sign (0 where a is 0)
  const __m256i pairs = _mm256_maddubs_epi16(ua, sb);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

// A Q4_0 block's 32 codes minus 8 as signed bytes: weight j is the low nibble of qs[j], weight j + 16 its
// high nibble.
inline __m256i q4_0_values(const std::uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(packed, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

inline __m256i load32(const std::int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// One row after another: per block, the scale product times the exact integer dot product of the
// block's 32 weights (`values` gives them as signed bytes) with the activations' Q8_0 block.
template <class Block, class Values>
void gemv_blocks(const Block* w, std::int64_t rows, std::int64_t cols, const ggml::BlockQ8_0* x_q, float* y,
                 Values values) {
  const std::int64_t per_row = cols / ggml::kBlock;
  for (std::int64_t r = 0; r < rows; ++r) {
    __m256 acc = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < per_row; ++b) {
      const Block& wb = w[r * per_row + b];
      const ggml::BlockQ8_0& xb = x_q[b];
      const __m256 d = _mm256_set1_ps(half_bits_to_float(wb.d) * half_bits_to_float(xb.d));
      acc = _mm256_fmadd_ps(d, dot32(values(wb), load32(xb.qs)), acc);
    }
    y[r] = hsum_ps(acc);
  }
}

}  // namespace

void gemv_q8_0_avx2(const ggml::BlockQ8_0* w, std::int64_t rows, std::int64_t cols,
                    const ggml::BlockQ8_0* x_q, float* y) {
  // A weight code of -128 (only in hand-written blocks) reads as |w| = 128 in maddubs: still exact
  // (2 * 128 * 127 < 32768).
  gemv_blocks(w, rows, cols, x_q, y, [](const ggml::BlockQ8_0& b) { return load32(b.qs); });
}

void gemv_q4_0_avx2(const ggml::BlockQ4_0* w, std::int64_t rows, std::int64_t cols,
                    const ggml::BlockQ8_0* x_q, float* y) {
  gemv_blocks(w, rows, cols, x_q, y, [](const ggml::BlockQ4_0& b) { return q4_0_values(b.qs); });
}

}  // namespace qk::kernels
