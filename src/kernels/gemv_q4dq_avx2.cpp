// Double-quantized INT4 GEMV (AVX2): x split once per call into its even and odd elements
// (deinterleave.hpp), code - 8 converted exactly, one float32 partial sum per group scaled once.
#include <immintrin.h>

#include "block4_avx2.hpp"
#include "deinterleave.hpp"
#include "isa_variants.hpp"
#include "quantkit/kernels/block_kernels.hpp"

namespace qk::kernels {

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
