// AVX2 row-wise dequantization (compiled with -mavx2 -mfma -mf16c only): widen codes to int32, convert
// (exact), then one multiply and one add per value, the reference's two float32 operations.
#include <immintrin.h>

#include "isa_variants.hpp"
#include "quantkit/kernels/rowwise_kernels.hpp"

namespace qk::kernels {

namespace {
inline void store8(__m128i codes8, __m256 s, __m256 b, float* out) {
  const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes8));
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_mul_ps(v, s), b));
}
}  // namespace

void rowwise_dequantize_u8_avx2(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                                float* out) {
  const __m256 s = _mm256_set1_ps(scale), b = _mm256_set1_ps(bias);
  std::int64_t d = 0;
  for (; d + 16 <= dim; d += 16) {
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + d));
    store8(c, s, b, out + d);
    store8(_mm_srli_si128(c, 8), s, b, out + d + 8);
  }
  rowwise_dequantize_u8_ref(codes + d, dim - d, scale, bias, out + d);
}

void rowwise_dequantize_u4_avx2(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                                float* out) {
  const __m256 s = _mm256_set1_ps(scale), b = _mm256_set1_ps(bias);
  const __m128i nibble = _mm_set1_epi8(0x0F);
  std::int64_t d = 0;
  for (; d + 16 <= dim; d += 16) {
    // 8 bytes hold 16 codes; element 2k is byte k's low nibble, 2k+1 its high nibble.
    const __m128i packed = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + d / 2));
    const __m128i lo = _mm_and_si128(packed, nibble);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), nibble);
    const __m128i ordered = _mm_unpacklo_epi8(lo, hi);
    store8(ordered, s, b, out + d);
    store8(_mm_srli_si128(ordered, 8), s, b, out + d + 8);
  }
  // d is even here, so the tail starts on a byte boundary.
  rowwise_dequantize_u4_ref(codes + d / 2, dim - d, scale, bias, out + d);
}

}  // namespace qk::kernels
