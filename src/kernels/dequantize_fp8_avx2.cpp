// AVX2 FP8 dequantize (compiled with -mavx2 -mfma -mf16c only), eight codes at a time, exact decode then
// one multiply by the scale, as the reference:
// - E5M2 is the upper byte of an IEEE half: code << 8 converted by F16C (subnormals, Inf and NaN included).
// - E4M3: a normal code's 7 magnitude bits shifted into a float's exponent and mantissa, with the exponent
//   rebased (bias 7 -> 127); a subnormal code (exponent 0) is its mantissa times 2^-9, converted from
//   integer (no float subnormal is ever formed, so FTZ/DAZ modes cannot change the result); 0x7F is NaN.
#include <immintrin.h>

#include <cstring>

#include "isa_variants.hpp"
#include "quantkit/kernels/fp8_kernels.hpp"

namespace qk::kernels {

namespace {

inline __m128i load8(const std::uint8_t* p) {
  long long eight;
  std::memcpy(&eight, p, sizeof eight);
  return _mm_cvtsi64_si128(eight);
}

inline __m256 decode_e4m3(__m128i bytes) {
  const __m256i b = _mm256_cvtepu8_epi32(bytes);
  const __m256i mag = _mm256_and_si256(b, _mm256_set1_epi32(0x7F));
  const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x80)), 24);
  const __m256 normal =
      _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(mag, 20), _mm256_set1_epi32(120 << 23)));
  const __m256 subnormal = _mm256_mul_ps(_mm256_cvtepi32_ps(mag), _mm256_set1_ps(1.0f / 512.0f));
  const __m256i is_sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(8), mag);  // exponent field 0
  __m256 v = _mm256_blendv_ps(normal, subnormal, _mm256_castsi256_ps(is_sub));
  const __m256i is_nan = _mm256_cmpeq_epi32(mag, _mm256_set1_epi32(0x7F));
  v = _mm256_blendv_ps(v, _mm256_set1_ps(__builtin_nanf("")), _mm256_castsi256_ps(is_nan));
  return _mm256_or_ps(v, _mm256_castsi256_ps(sign));
}

inline __m256 decode_e5m2(__m128i bytes) {
  return _mm256_cvtph_ps(_mm_slli_epi16(_mm_cvtepu8_epi16(bytes), 8));
}

template <__m256 (*Decode)(__m128i)>
void dequantize_avx2(const std::uint8_t* codes, std::int64_t n, float scale, float* out,
                     void (*tail)(const std::uint8_t*, std::int64_t, float, float*)) {
  const __m256 s = _mm256_set1_ps(scale);
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(Decode(load8(codes + i)), s));
  tail(codes + i, n - i, scale, out + i);
}

}  // namespace

void dequantize_e4m3_avx2(const std::uint8_t* codes, std::int64_t n, float scale, float* out) {
  dequantize_avx2<decode_e4m3>(codes, n, scale, out, dequantize_e4m3_ref);
}
void dequantize_e5m2_avx2(const std::uint8_t* codes, std::int64_t n, float scale, float* out) {
  dequantize_avx2<decode_e5m2>(codes, n, scale, out, dequantize_e5m2_ref);
}

}  // namespace qk::kernels
