// FP16 GEMV/GEMM (AVX-512, compiled with the AVX-512 flags only): weights widened sixteen at a time with
// the 512-bit vcvtph2ps, products and sums in float32. The AVX2 variant's F16C conversion of eight halves
// per instruction was what held its GEMV below the memory bus (0.81 of the streaming-read limit on the
// EPYC); here one conversion, one load of x and one FMA cover sixteen weights.
//
// As in the AVX2 variant, each output takes the same steps whatever tile or thread it falls in: GEMV keeps
// four accumulators in a fixed rotation, GEMM one accumulator per output, each summed by one fixed
// reduction at the end.
#include <immintrin.h>

#include "isa_variants.hpp"
#include "quantkit/kernels/packed_weights.hpp"

namespace qk::kernels {

namespace {

inline __m512 load16(const std::uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// The stride is a multiple of Fp16Weights::kStep (32): 64 columns per step, then one step of 32.
float gemv_row(const float* x, const std::uint16_t* wr, std::int64_t stride) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  std::int64_t k = 0;
  for (; k + 64 <= stride; k += 64)
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm512_fmadd_ps(load16(wr + k + 16 * j), _mm512_loadu_ps(x + k + 16 * j), acc[j]);
  if (k < stride)
    for (int j = 0; j < 2; ++j)
      acc[j] = _mm512_fmadd_ps(load16(wr + k + 16 * j), _mm512_loadu_ps(x + k + 16 * j), acc[j]);
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

// R rows of W (from output o) against B rows of X, 16 columns per step.
template <int R, int B>
void tile(const float* x, const Fp16Weights& w, std::int64_t o, float* y) {
  __m512 acc[R][B];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) acc[r][b] = _mm512_setzero_ps();
  const std::uint16_t* wp = w.bits.data() + o * w.stride;
  for (std::int64_t k = 0; k < w.stride; k += 16) {
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = load16(wp + r * w.stride + k);
    for (int b = 0; b < B; ++b) {
      const __m512 xv = _mm512_loadu_ps(x + b * w.stride + k);
      for (int r = 0; r < R; ++r) acc[r][b] = _mm512_fmadd_ps(wv[r], xv, acc[r][b]);
    }
  }
  for (int b = 0; b < B; ++b)
    for (int r = 0; r < R; ++r) y[b * w.rows + o + r] = _mm512_reduce_add_ps(acc[r][b]);
}

template <int R>
void rows(const float* x, std::int64_t batch, const Fp16Weights& w, std::int64_t o, float* y) {
  std::int64_t b = 0;
  for (; b + 4 <= batch; b += 4) tile<R, 4>(x + b * w.stride, w, o, y + b * w.rows);
  for (; b < batch; ++b) tile<R, 1>(x + b * w.stride, w, o, y + b * w.rows);
}

}  // namespace

// x is [batch, w.stride] (padded); rows [row_begin, row_end) of W. GEMV row by row (one sequential stream
// of weights), GEMM in 4 x 4 register tiles.
void gemm_fp16_avx512(const float* x, std::int64_t batch, const Fp16Weights& w, std::int64_t row_begin,
                      std::int64_t row_end, float* y) {
  if (batch == 1) {
    for (std::int64_t o = row_begin; o < row_end; ++o)
      y[o] = gemv_row(x, w.bits.data() + o * w.stride, w.stride);
    return;
  }
  std::int64_t o = row_begin;
  for (; o + 4 <= row_end; o += 4) rows<4>(x, batch, w, o, y);
  for (; o < row_end; ++o) rows<1>(x, batch, w, o, y);
}

}  // namespace qk::kernels
