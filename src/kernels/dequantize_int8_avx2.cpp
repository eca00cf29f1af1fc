// AVX2 dequantize (compiled with -mavx2 -mfma -mf16c only): widen 8 codes to int32, subtract the zero
// point exactly in int32, convert (exact: |q - zp| < 2^24) and multiply once, as the reference does.
#include <immintrin.h>

#include <type_traits>

#include "isa_variants.hpp"
#include "quantkit/kernels/dequantize_kernels.hpp"

namespace qk::kernels {

namespace {

template <class Q>
__m256i widen(const Q* p) {
  const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  if constexpr (std::is_signed_v<Q>) {
    return _mm256_cvtepi8_epi32(bytes);
  } else {
    return _mm256_cvtepu8_epi32(bytes);
  }
}

template <class Q>
void dequantize_avx2(const Q* q, std::int64_t n, float scale, std::int32_t zero_point, float* out) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i zp = _mm256_set1_epi32(zero_point);
  std::int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 32; k += 8) {
      const __m256 v = _mm256_cvtepi32_ps(_mm256_sub_epi32(widen(q + i + k), zp));
      _mm256_storeu_ps(out + i + k, _mm256_mul_ps(v, s));
    }
  }
  if (i < n) {
    if constexpr (std::is_signed_v<Q>) {
      dequantize_i8_f32_ref(q + i, n - i, scale, zero_point, out + i);
    } else {
      dequantize_u8_f32_ref(q + i, n - i, scale, zero_point, out + i);
    }
  }
}

}  // namespace

void dequantize_i8_f32_avx2(const std::int8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                            float* out) {
  dequantize_avx2(q, n, scale, zero_point, out);
}
void dequantize_u8_f32_avx2(const std::uint8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                            float* out) {
  dequantize_avx2(q, n, scale, zero_point, out);
}

}  // namespace qk::kernels
