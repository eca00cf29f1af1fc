// GEMV on ggml's Q8_0, Q4_0 and Q4_K blocks (AVX2), as ggml's own AVX2 dot products compute them: per block
// the 32 int8 products summed exactly (the sign of one operand moved onto the other so that maddubs
// multiplies unsigned by signed without saturating: |q| <= 127 for Q8_0 activations, so a pair sums to at
// most 2 * 127 * 127), then one fused multiply-add of the block's scale product into eight float lanes.
// Q4_K: per super-block the scaled integer sum in eight int32 lanes, one fused multiply-add by d * d_x, and
// the mins term from the activations' bsums. The float sums differ from the scalar reference's order by
// rounding only (kernels/ggml_gemv.hpp's bound).
#include <immintrin.h>

#include <vector>

#include "ggml_q4k_scales.hpp"
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
// block's 32 weights (`values` gives them as signed bytes) with the activations' Q8_0 block. The float16
// scales go through F16C's vcvtph2ps (exact for every half, subnormals included; x's once per call), and
// two accumulators take alternate blocks, so the FMA latency does not bound a row.
template <class Block, class Values>
void gemv_blocks(const Block* w, std::int64_t rows, std::int64_t cols, const ggml::BlockQ8_0* x_q, float* y,
                 Values values) {
  const std::int64_t per_row = cols / ggml::kBlock;
  thread_local std::vector<float> x_scales;
  x_scales.resize(static_cast<std::size_t>(per_row));
  for (std::int64_t b = 0; b < per_row; ++b) x_scales[static_cast<std::size_t>(b)] = _cvtsh_ss(x_q[b].d);
  const auto block = [&](const Block& wb, std::int64_t b, __m256 acc) {
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(wb.d) * x_scales[static_cast<std::size_t>(b)]);
    return _mm256_fmadd_ps(d, dot32(values(wb), load32(x_q[b].qs)), acc);
  };
  for (std::int64_t r = 0; r < rows; ++r) {
    const Block* row = w + r * per_row;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    std::int64_t b = 0;
    for (; b + 2 <= per_row; b += 2) {
      acc0 = block(row[b], b, acc0);
      acc1 = block(row[b + 1], b + 1, acc1);
    }
    if (b < per_row) acc0 = block(row[b], b, acc0);
    y[r] = hsum_ps(_mm256_add_ps(acc0, acc1));
  }
}

// One Q4_K row against Q8_K activations (ggml_vec_dot_q4_K_q8_K's AVX2 body). The codes are unsigned
// (0..15), so maddubs takes them as they are: a pair is at most 2 * 15 * 127; madd by the sub-block's
// scale (<= 63) keeps every int32 lane exact (the whole super-block sums to at most 256 * 63 * 15 * 127).
float q4_k_row(const ggml::BlockQ4_K* w, std::int64_t per_row, const BlockQ8K* x_q) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_mins = _mm_setzero_ps();
  for (std::int64_t b = 0; b < per_row; ++b) {
    const ggml::BlockQ4_K& wb = w[b];
    const BlockQ8K& xb = x_q[b];
    const Q4KScales sm = unpack_q4_k_scales(wb.scales);
    // Mins: min_s * (bsum_{2s} + bsum_{2s+1}), four int32 lanes (|.| <= 2 * 63 * 32 * 127).
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
    const __m128i pair_sums =
        _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1));
    const __m128i mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(sm.mins)));
    acc_mins = _mm_fmadd_ps(_mm_set1_ps(half_bits_to_float(wb.dmin) * xb.d),
                            _mm_cvtepi32_ps(_mm_madd_epi16(mins, pair_sums)), acc_mins);
    // 64 weights per step: low nibbles against the first 32 activations, high nibbles the next 32.
    __m256i sum = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb.qs + 32 * j));
      const __m256i lo = _mm256_and_si256(codes, low4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(codes, 4), low4);
      const __m256i p_lo =
          _mm256_madd_epi16(_mm256_set1_epi16(static_cast<short>((sm.scales >> (16 * j)) & 0xFF)),
                            _mm256_maddubs_epi16(lo, load32(xb.qs + 64 * j)));
      const __m256i p_hi =
          _mm256_madd_epi16(_mm256_set1_epi16(static_cast<short>((sm.scales >> (16 * j + 8)) & 0xFF)),
                            _mm256_maddubs_epi16(hi, load32(xb.qs + 64 * j + 32)));
      sum = _mm256_add_epi32(sum, _mm256_add_epi32(p_lo, p_hi));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_bits_to_float(wb.d) * xb.d), _mm256_cvtepi32_ps(sum), acc);
  }
  __m128 m = _mm_add_ps(acc_mins, _mm_movehl_ps(acc_mins, acc_mins));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return hsum_ps(acc) - _mm_cvtss_f32(m);
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

void gemv_q4_k_avx2(const ggml::BlockQ4_K* w, std::int64_t rows, std::int64_t cols, const BlockQ8K* x_q,
                    float* y) {
  const std::int64_t per_row = cols / ggml::kSuperBlock;
  for (std::int64_t r = 0; r < rows; ++r) y[r] = q4_k_row(w + r * per_row, per_row, x_q);
}

}  // namespace qk::kernels
