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

// group_size is a multiple of kNf4SimdGroup: 16 code bytes per step.
void gemv_nf4_avx512(const std::uint8_t* codes, const float* scales, std::int64_t rows, std::int64_t cols,
                     std::int64_t group_size, const float* x, float* y) {
  const __m512 levels = _mm512_loadu_ps(kNf4Levels.data());
  const DeinterleavedX xs(x, cols);
  const std::int64_t groups = cols / group_size;
  const std::int64_t half = group_size / 2;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::uint8_t* row = codes + r * cols / 2;
    __m512 acc = _mm512_setzero_ps();
    for (std::int64_t g = 0; g < groups; ++g) {
      const std::uint8_t* group = row + g * half;
      const float* even = xs.even() + g * half;
      const float* odd = xs.odd() + g * half;
      __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
      for (std::int64_t j = 0; j < half; j += 16) {
        const __m512i bytes = bytes16(group + j);
        s0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(bytes, levels), _mm512_loadu_ps(even + j), s0);
        s1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), levels),
                             _mm512_loadu_ps(odd + j), s1);
      }
      acc = _mm512_fmadd_ps(_mm512_add_ps(s0, s1), _mm512_set1_ps(scales[r * groups + g]), acc);
    }
    y[r] = _mm512_reduce_add_ps(acc);
  }
}

}  // namespace qk::kernels
