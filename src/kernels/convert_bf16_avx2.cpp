// float32 <-> bfloat16 with AVX2 integer arithmetic (the reference's add-and-shift rounding); tails go
// to the scalar reference. Identical bits to the reference, NaN payloads included (tested exhaustively).
#include <immintrin.h>

#include "isa_variants.hpp"
#include "quantkit/kernels/convert_kernels.hpp"

namespace qk::kernels {

void f32_to_bf16_avx2(const float* x, std::int64_t n, std::uint16_t* out) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(0x40);
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i halves[2];
    for (int j = 0; j < 2; ++j) {
      const __m256i bits = _mm256_castps_si256(_mm256_loadu_ps(x + i + 8 * j));
      const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, abs_mask), inf);
      const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), one);
      const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, bias), odd), 16);
      const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(bits, 16), quiet);
      halves[j] = _mm256_blendv_epi8(rounded, nan, is_nan);
    }
    // packus works within 128-bit lanes; the permute puts the 16 results back in order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(halves[0], halves[1]), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), packed);
  }
  f32_to_bf16_ref(x + i, n - i, out + i);
}

void bf16_to_f32_avx2(const std::uint16_t* x, std::int64_t n, float* out) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
  }
  bf16_to_f32_ref(x + i, n - i, out + i);
}

}  // namespace qk::kernels
