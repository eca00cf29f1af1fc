// The float32 GEMV/GEMM over weights widened to float32 on the fly (AVX2 + FMA), written once for the
// FP16 weights (F16C) and the INT8 weights with float activations, which differ only in the policy
// (Widen): how eight weights become floats and what is done to a finished sum (INT8: the row's scale).
// Included by gemm_fp16_avx2.cpp and gemm_int8_float_avx2.cpp only; internal linkage (simd_x86.hpp).
//
// One float32 accumulator vector per output, 8 columns per step, then hsum_ps: every output takes the
// same steps whatever tile it falls in, so results do not depend on the tiling or the thread count.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "quantkit/kernels/packed_weights.hpp"
#include "simd_x86.hpp"

namespace {

// GEMV: one row at a time, so the weights are read as one sequential stream (interleaved rows measured
// ~35% slower here), with four accumulators (32 columns per step) to hide the FMA latency. Their fixed
// combination order keeps every output independent of the row range a thread gets.
template <class Widen>
float widen_gemv_row(const float* x, const typename Widen::Code* wr, std::int64_t stride) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (std::int64_t k = 0; k < stride; k += 32) {
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm256_fmadd_ps(Widen::load8(wr + k + 8 * j), _mm256_loadu_ps(x + k + 8 * j), acc[j]);
  }
  return hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

// R rows of W (from output o) against B rows of X.
template <class Widen, int R, int B>
void widen_tile(const float* x, const typename Widen::Weights& w, std::int64_t o, float* y) {
  __m256 acc[R][B];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) acc[r][b] = _mm256_setzero_ps();
  const typename Widen::Code* wp = Widen::row(w, o);
  for (std::int64_t k = 0; k < w.stride; k += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = Widen::load8(wp + r * w.stride + k);
    for (int b = 0; b < B; ++b) {
      const __m256 xv = _mm256_loadu_ps(x + b * w.stride + k);
      for (int r = 0; r < R; ++r) acc[r][b] = _mm256_fmadd_ps(wv[r], xv, acc[r][b]);
    }
  }
  for (int b = 0; b < B; ++b)
    for (int r = 0; r < R; ++r) y[b * w.rows + o + r] = Widen::finish(hsum_ps(acc[r][b]), w, o + r);
}

template <class Widen, int R>
void widen_rows(const float* x, std::int64_t batch, const typename Widen::Weights& w, std::int64_t o,
                float* y) {
  std::int64_t b = 0;
  for (; b + 2 <= batch; b += 2) widen_tile<Widen, R, 2>(x + b * w.stride, w, o, y + b * w.rows);
  if (b < batch) widen_tile<Widen, R, 1>(x + b * w.stride, w, o, y + b * w.rows);
}

// The kernel: x is [batch, w.stride] (padded), rows [row_begin, row_end) of W; GEMV row by row, GEMM in
// 4 x 2 register tiles.
template <class Widen>
void widen_run(const float* x, std::int64_t batch, const typename Widen::Weights& w, std::int64_t row_begin,
               std::int64_t row_end, float* y) {
  if (batch == 1) {
    for (std::int64_t o = row_begin; o < row_end; ++o)
      y[o] = Widen::finish(widen_gemv_row<Widen>(x, Widen::row(w, o), w.stride), w, o);
    return;
  }
  std::int64_t o = row_begin;
  for (; o + 4 <= row_end; o += 4) widen_rows<Widen, 4>(x, batch, w, o, y);
  for (; o < row_end; ++o) widen_rows<Widen, 1>(x, batch, w, o, y);
}

}  // namespace
