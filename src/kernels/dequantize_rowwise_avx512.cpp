// AVX-512 INT8 row gather (compiled with the AVX-512 F/BW/VL flags only): 16 codes per step and one
// masked step for the rest of a row (dim 100 = 6 x 16 + 4), so no scalar tail; a multiply then an add,
// the reference's two float32 operations.
#include <immintrin.h>

#include "isa_variants.hpp"
#include "quantkit/kernels/rowwise_kernels.hpp"
#include "rowwise_gather_x86.hpp"

namespace qk::kernels {

namespace {
inline __m512 dequantize16(__m128i codes16, __m512 s, __m512 b) {
  const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(codes16));
  return _mm512_add_ps(_mm512_mul_ps(v, s), b);
}
}  // namespace

void rowwise_gather_u8_avx512(const std::uint8_t* rows, std::int64_t row_bytes, const std::int64_t* ids,
                              std::int64_t n, std::int64_t dim, float* out) {
  const auto tail = static_cast<__mmask16>((1u << (dim % 16)) - 1);
  for (std::int64_t i = 0; i < n; ++i) {
    detail::prefetch_gather_row(rows, row_bytes, ids, n, i);
    const std::uint8_t* row = rows + ids[i] * row_bytes;
    float* dst = out + i * dim;
    const __m128 scale_bias = decode_scale_bias(row, dim);
    const __m512 s = _mm512_broadcastss_ps(scale_bias),
                 b = _mm512_broadcastss_ps(_mm_movehdup_ps(scale_bias));
    std::int64_t d = 0;
    for (; d + 16 <= dim; d += 16)
      _mm512_storeu_ps(dst + d,
                       dequantize16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d)), s, b));
    // Masked-off bytes are neither read (no fault past the codes) nor written.
    if (tail) _mm512_mask_storeu_ps(dst + d, tail, dequantize16(_mm_maskz_loadu_epi8(tail, row + d), s, b));
  }
}

}  // namespace qk::kernels
