// NF4 GEMV (AVX-512, compiled with the AVX-512 flags only). x is split into even and odd elements once
// per call (DeinterleavedX); sixteen code bytes widened to int32 give 32 weights, whose levels come from
// one vpermps on the low nibble (the instruction reads bits 0-3 only) and one on the byte shifted right by 4.
#include <immintrin.h>

#include "deinterleave.hpp"
#include "isa_variants.hpp"
#include "quantkit/kernels/block_kernels.hpp"

namespace qk::kernels {

namespace {

inline __m512i bytes16(const std::uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

}  // namespace

void gemv_nf4_avx512(const BlockNf4* w, std::int64_t rows, std::int64_t cols, const float* x, float* y) {
  const __m512 levels = _mm512_loadu_ps(kNf4Levels.data());
  const DeinterleavedX xs(x, cols);
  const std::int64_t per_row = cols / BlockNf4::kWeights;
  constexpr std::int64_t kHalf = BlockNf4::kWeights / 2;
  for (std::int64_t r = 0; r < rows; ++r) {
    __m512 acc = _mm512_setzero_ps();
    for (std::int64_t b = 0; b < per_row; ++b) {
      const BlockNf4& blk = w[r * per_row + b];
      const float* even = xs.even() + b * kHalf;
      const float* odd = xs.odd() + b * kHalf;
      __m512 s[4];
      for (int k = 0; k < 2; ++k) {  // 32 bytes: two runs of 16
        const __m512i bytes = bytes16(blk.codes + 16 * k);
        s[2 * k] = _mm512_mul_ps(_mm512_permutexvar_ps(bytes, levels), _mm512_loadu_ps(even + 16 * k));
        s[2 * k + 1] = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), levels),
                                     _mm512_loadu_ps(odd + 16 * k));
      }
      const __m512 sum = _mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3]));
      acc = _mm512_fmadd_ps(sum, _mm512_set1_ps(blk.absmax), acc);
    }
    y[r] = _mm512_reduce_add_ps(acc);
  }
}

}  // namespace qk::kernels
