// Double-quantized INT4 GEMV (AVX-512, compiled with the AVX-512 flags only). x is split into even and odd
// elements once per call (DeinterleavedX); sixteen code bytes widened to int32 give 32 weights, each
// nibble's value (nibble - 8, exact in float) looked up with one vpermps, which reads only the low four
// bits of each index: one instruction instead of mask, subtract and convert, as NF4 does with its levels.
#include <immintrin.h>

#include "deinterleave.hpp"
#include "isa_variants.hpp"
#include "quantkit/kernels/block_kernels.hpp"

namespace qk::kernels {

namespace {

inline __m512i bytes16(const std::uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Nibble n -> n - 8 as a float; vpermps takes index bits 0-3, so the high nibble needs only a shift.
inline __m512 int4_values16(__m512i nibbles) {
  const __m512 values = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
  return _mm512_permutexvar_ps(nibbles, values);
}

}  // namespace

void gemv_q4dq_avx512(const BlockQ4DQ* w, std::int64_t rows, std::int64_t cols, const float* x, float* y) {
  const DeinterleavedX xs(x, cols);
  const std::int64_t per_row = cols / BlockQ4DQ::kWeights;
  constexpr std::int64_t kHalf = BlockQ4DQ::kWeights / 2, kGroupBytes = BlockQ4DQ::kGroup / 2;
  static_assert(kGroupBytes == 16, "a group of 32 weights is one run of 16 bytes");
  for (std::int64_t r = 0; r < rows; ++r) {
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (std::int64_t b = 0; b < per_row; ++b) {
      const BlockQ4DQ& blk = w[r * per_row + b];
      const float* even = xs.even() + b * kHalf;
      const float* odd = xs.odd() + b * kHalf;
      for (std::int64_t g = 0; g < BlockQ4DQ::kWeights / BlockQ4DQ::kGroup; ++g) {
        const __m512i bytes = bytes16(blk.codes + g * kGroupBytes);
        const __m512 lo = _mm512_mul_ps(int4_values16(bytes), _mm512_loadu_ps(even + g * kGroupBytes));
        const __m512 sum = _mm512_fmadd_ps(int4_values16(_mm512_srli_epi32(bytes, 4)),
                                           _mm512_loadu_ps(odd + g * kGroupBytes), lo);
        acc[g % 2] = _mm512_fmadd_ps(sum, _mm512_set1_ps(static_cast<float>(blk.scales[g]) * blk.super_scale),
                                     acc[g % 2]);
      }
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
  }
}

}  // namespace qk::kernels
