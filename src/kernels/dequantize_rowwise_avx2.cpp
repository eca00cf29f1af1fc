// AVX2 row-wise dequantization and INT8 row gather (compiled with -mavx2 -mfma -mf16c only): widen codes
// to int32, convert (exact), then one multiply and one add per value, the reference's two float32
// operations.
#include <immintrin.h>

#include "isa_variants.hpp"
#include "quantkit/kernels/rowwise_kernels.hpp"
#include "rowwise_gather_x86.hpp"

namespace qk::kernels {

namespace {
inline void store8(__m128i codes8, __m256 s, __m256 b, float* out) {
  const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes8));
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_mul_ps(v, s), b));
}

// One row of 8-bit codes; scale_bias holds the scale in lane 0 and the bias in lane 1. 16 codes a step,
// then 8, then at most 7 one at a time in scalar SSE: neither a call to the reference (per row, in a
// gather, the call cost more than the codes) nor a plain loop, which GCC vectorizes behind run-time alias
// checks that cost more than the codes too.
inline void dequantize_u8_row(const std::uint8_t* codes, std::int64_t dim, __m128 scale_bias, float* out) {
  const __m128 bias = _mm_movehdup_ps(scale_bias);
  const __m256 s = _mm256_broadcastss_ps(scale_bias), b = _mm256_broadcastss_ps(bias);
  std::int64_t d = 0;
  for (; d + 16 <= dim; d += 16) {
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + d));
    store8(c, s, b, out + d);
    store8(_mm_srli_si128(c, 8), s, b, out + d + 8);
  }
  if (d + 8 <= dim) {
    store8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + d)), s, b, out + d);
    d += 8;
  }
  for (; d < dim; ++d) {
    const __m128 v = _mm_cvtsi32_ss(_mm_setzero_ps(), codes[d]);
    _mm_store_ss(out + d, _mm_add_ss(_mm_mul_ss(v, scale_bias), bias));
  }
}
}  // namespace

void rowwise_dequantize_u8_avx2(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                                float* out) {
  dequantize_u8_row(codes, dim, _mm_setr_ps(scale, bias, 0.0f, 0.0f), out);
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

void rowwise_gather_u8_avx2(const std::uint8_t* rows, std::int64_t row_bytes, const std::int64_t* ids,
                            std::int64_t n, std::int64_t dim, float* out) {
  for (std::int64_t i = 0; i < n; ++i) {
    detail::prefetch_gather_row(rows, row_bytes, ids, n, i);
    const std::uint8_t* row = rows + ids[i] * row_bytes;
    dequantize_u8_row(row, dim, decode_scale_bias(row, dim), out + i * dim);
  }
}

}  // namespace qk::kernels
