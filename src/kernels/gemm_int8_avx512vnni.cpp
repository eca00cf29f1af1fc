// INT8 GEMV/GEMM with dynamic uint8 activations (AVX-512 VNNI): vpdpbusd multiplies u8 activation codes
// by s8 weight codes and adds groups of four straight into int32, with no int16 step, so every code is
// exact (no 128 limit as on AVX2). 64 columns per step.
#include <immintrin.h>

#include "quantkit/kernels/gemm_kernels.hpp"
#include "simd_x86.hpp"

namespace qk::kernels {

namespace {

// (GCC 12 warns inside _mm512_reduce_add_epi32, so the halves are added here.)
std::int32_t hsum_epi32_512(__m512i v) {
  return hsum_epi32(_mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)));
}

template <int R, int B>
void tile(const QuantizedActivations& x, std::int64_t b0, const Int8Weights& w, std::int64_t o0, float* y) {
  __m512i acc[R][B];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) acc[r][b] = _mm512_setzero_si512();
  const std::int8_t* wp = w.codes.data() + o0 * w.stride;
  const std::uint8_t* xp = x.codes.data() + b0 * x.stride;
  for (std::int64_t k = 0; k < w.stride; k += 64) {
    __m512i wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_si512(wp + r * w.stride + k);
    for (int b = 0; b < B; ++b) {
      const __m512i xv = _mm512_loadu_si512(xp + b * x.stride + k);
      for (int r = 0; r < R; ++r) acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], xv, wv[r]);
    }
  }
  for (int b = 0; b < B; ++b) {
    const auto bi = static_cast<std::size_t>(b0 + b);
    for (int r = 0; r < R; ++r) {
      const auto o = static_cast<std::size_t>(o0 + r);
      const auto sum = static_cast<std::int32_t>(static_cast<std::uint32_t>(hsum_epi32_512(acc[r][b])) -
                                                 static_cast<std::uint32_t>(x.zero_points[bi]) *
                                                     static_cast<std::uint32_t>(w.row_sums[o]));
      y[static_cast<std::int64_t>(bi) * w.rows + static_cast<std::int64_t>(o)] =
          static_cast<float>(sum) * (x.scales[bi] * w.scales[o]);
    }
  }
}

// GEMV: one row at a time (one sequential stream of weights), two accumulators over 128 columns, and a
// last 64-column step when the stride is an odd number of 64s.
void gemv_row(const QuantizedActivations& x, const Int8Weights& w, std::int64_t o, float* y) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  const std::int8_t* wr = w.codes.data() + o * w.stride;
  const std::uint8_t* xr = x.codes.data();
  std::int64_t k = 0;
  for (; k + 128 <= w.stride; k += 128) {
    acc0 = _mm512_dpbusd_epi32(acc0, _mm512_loadu_si512(xr + k), _mm512_loadu_si512(wr + k));
    acc1 = _mm512_dpbusd_epi32(acc1, _mm512_loadu_si512(xr + k + 64), _mm512_loadu_si512(wr + k + 64));
  }
  if (k < w.stride) acc0 = _mm512_dpbusd_epi32(acc0, _mm512_loadu_si512(xr + k), _mm512_loadu_si512(wr + k));
  const auto sum =
      static_cast<std::int32_t>(static_cast<std::uint32_t>(hsum_epi32_512(_mm512_add_epi32(acc0, acc1))) -
                                static_cast<std::uint32_t>(x.zero_points[0]) *
                                    static_cast<std::uint32_t>(w.row_sums[static_cast<std::size_t>(o)]));
  y[o] = static_cast<float>(sum) * (x.scales[0] * w.scales[static_cast<std::size_t>(o)]);
}

template <int R>
void rows_tile(const QuantizedActivations& x, const Int8Weights& w, std::int64_t o, float* y) {
  std::int64_t b = 0;
  for (; b + 4 <= x.rows; b += 4) tile<R, 4>(x, b, w, o, y);
  for (; b < x.rows; ++b) tile<R, 1>(x, b, w, o, y);
}

}  // namespace

void gemm_int8_avx512vnni(const QuantizedActivations& x, const Int8Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y) {
  if (x.rows == 1) {
    for (std::int64_t o = row_begin; o < row_end; ++o) gemv_row(x, w, o, y);
    return;
  }
  std::int64_t o = row_begin;
  for (; o + 4 <= row_end; o += 4) rows_tile<4>(x, w, o, y);
  for (; o < row_end; ++o) rows_tile<1>(x, w, o, y);
}

}  // namespace qk::kernels
