// INT8 weights with float32 activations (AVX2 + FMA): codes widened to float on the fly, one float32
// accumulator per output, the row's scale applied once at the end, as the scalar reference does.
#include <immintrin.h>

#include "isa_variants.hpp"
#include "quantkit/kernels/gemm_kernels.hpp"
#include "simd_x86.hpp"

namespace qk::kernels {

namespace {

// GEMV: one row at a time, so the weights are read as one sequential stream (interleaved rows measured
// ~35% slower here), with four accumulators (32 columns per step) to hide the FMA latency. Their fixed
// combination order keeps every output independent of the row range a thread gets.
float gemv_row(const float* x, const std::int8_t* wr, std::int64_t stride) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (std::int64_t k = 0; k < stride; k += 32) {
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                   _mm_loadl_epi64(reinterpret_cast<const __m128i*>(wr + k + 8 * j)))),
                               _mm256_loadu_ps(x + k + 8 * j), acc[j]);
  }
  return hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

template <int R, int B>
void tile(const float* x, std::int64_t x_stride, const std::int8_t* w, std::int64_t w_stride,
          std::int64_t k_end, const float* scales, float* y, std::int64_t y_stride) {
  __m256 acc[R][B];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) acc[r][b] = _mm256_setzero_ps();
  for (std::int64_t k = 0; k < k_end; k += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) {
      const __m128i codes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + r * w_stride + k));
      wv[r] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes));
    }
    for (int b = 0; b < B; ++b) {
      const __m256 xv = _mm256_loadu_ps(x + b * x_stride + k);
      for (int r = 0; r < R; ++r) acc[r][b] = _mm256_fmadd_ps(wv[r], xv, acc[r][b]);
    }
  }
  for (int b = 0; b < B; ++b)
    for (int r = 0; r < R; ++r) y[b * y_stride + r] = hsum_ps(acc[r][b]) * scales[r];
}

template <int R>
void rows_tile(const float* x, std::int64_t batch, const Int8Weights& w, std::int64_t o, float* y) {
  const std::int8_t* wr = w.codes.data() + o * w.stride;
  const float* s = w.scales.data() + o;
  std::int64_t b = 0;
  for (; b + 2 <= batch; b += 2)
    tile<R, 2>(x + b * w.stride, w.stride, wr, w.stride, w.stride, s, y + b * w.rows + o, w.rows);
  if (b < batch)
    tile<R, 1>(x + b * w.stride, w.stride, wr, w.stride, w.stride, s, y + b * w.rows + o, w.rows);
}

}  // namespace

void gemm_int8_float_avx2(const float* x, std::int64_t batch, const Int8Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y) {
  if (batch == 1) {
    for (std::int64_t o = row_begin; o < row_end; ++o)
      y[o] = gemv_row(x, w.codes.data() + o * w.stride, w.stride) * w.scales[static_cast<std::size_t>(o)];
    return;
  }
  std::int64_t o = row_begin;
  for (; o + 4 <= row_end; o += 4) rows_tile<4>(x, batch, w, o, y);
  for (; o < row_end; ++o) rows_tile<1>(x, batch, w, o, y);
}

}  // namespace qk::kernels
