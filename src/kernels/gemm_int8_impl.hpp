// The INT8 GEMV/GEMM with uint8 activations, written once for every ISA: the AVX2 and the AVX-512 VNNI
// files differ only in the policy (Isa) they pass: the vector of codes, its integer dot product and its
// horizontal sum, the batch tile, and the largest activation code the dot product keeps exact.
// Included by those files only; everything here has internal linkage (simd_x86.hpp explains why).
//
// Per output y[b, o]: the hot loop sums qa * qw exactly in int32 lanes (modulo 2^32, like the
// reference's int32 accumulator; cols <= 65536 keeps the true value in range), and the epilogue removes
// the activations' zero point with the weights' row sum and applies the scales once (golden rule 9).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "quantkit/kernels/gemm_kernels.hpp"
#include "simd_x86.hpp"

namespace {

using qk::kernels::Int8Weights;
using qk::kernels::QuantizedActivations;

// raw = Σ qa * qw; raw - za * Σ qw is Σ (qa - za) * qw, exact modulo 2^32 and so exact once the true
// value fits int32; then y = float(acc) * (sa * sw), the reference's float steps.
inline void int8_store(const QuantizedActivations& x, const Int8Weights& w, std::int64_t b, std::int64_t o,
                       std::int32_t raw, float* y) {
  const auto bi = static_cast<std::size_t>(b);
  const auto oi = static_cast<std::size_t>(o);
  const auto sum = static_cast<std::int32_t>(static_cast<std::uint32_t>(raw) -
                                             static_cast<std::uint32_t>(x.zero_points[bi]) *
                                                 static_cast<std::uint32_t>(w.row_sums[oi]));
  y[b * w.rows + o] = static_cast<float>(sum) * (x.scales[bi] * w.scales[oi]);
}

// R rows of W against B rows of X, one accumulator vector per output.
template <class Isa, int R, int B>
void int8_tile(const QuantizedActivations& x, std::int64_t b0, const Int8Weights& w, std::int64_t o0,
               float* y) {
  using Vec = typename Isa::Vec;
  Vec acc[R][B];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) acc[r][b] = Isa::zero();
  const std::int8_t* wp = w.codes.data() + o0 * w.stride;
  const std::uint8_t* xp = x.codes.data() + b0 * x.stride;
  for (std::int64_t k = 0; k < w.stride; k += Isa::kBytes) {
    Vec wv[R];
    for (int r = 0; r < R; ++r) wv[r] = Isa::load(wp + r * w.stride + k);
    for (int b = 0; b < B; ++b) {
      const Vec xv = Isa::load(xp + b * x.stride + k);
      for (int r = 0; r < R; ++r) acc[r][b] = Isa::dot(acc[r][b], xv, wv[r]);
    }
  }
  for (int b = 0; b < B; ++b)
    for (int r = 0; r < R; ++r) int8_store(x, w, b0 + b, o0 + r, Isa::hsum(acc[r][b]), y);
}

// GEMV: one row at a time, so the weights are read as one sequential stream (four interleaved rows
// measured ~35% slower here: the prefetchers follow one stream across pages better than four), with two
// accumulators (two vectors per step) to keep the adds off the critical path, and a last one-vector step
// when the stride is an odd number of vectors.
template <class Isa>
void int8_gemv_row(const QuantizedActivations& x, const Int8Weights& w, std::int64_t o, float* y) {
  using Vec = typename Isa::Vec;
  Vec acc0 = Isa::zero(), acc1 = Isa::zero();
  const std::int8_t* wr = w.codes.data() + o * w.stride;
  const std::uint8_t* xr = x.codes.data();
  std::int64_t k = 0;
  for (; k + 2 * Isa::kBytes <= w.stride; k += 2 * Isa::kBytes) {
    acc0 = Isa::dot(acc0, Isa::load(xr + k), Isa::load(wr + k));
    acc1 = Isa::dot(acc1, Isa::load(xr + k + Isa::kBytes), Isa::load(wr + k + Isa::kBytes));
  }
  if (k < w.stride) acc0 = Isa::dot(acc0, Isa::load(xr + k), Isa::load(wr + k));
  int8_store(x, w, 0, o, Isa::hsum(Isa::add(acc0, acc1)), y);
}

template <class Isa, int R>
void int8_rows(const QuantizedActivations& x, const Int8Weights& w, std::int64_t o, float* y) {
  std::int64_t b = 0;
  for (; b + Isa::kBatchTile <= x.rows; b += Isa::kBatchTile)
    int8_tile<Isa, R, Isa::kBatchTile>(x, b, w, o, y);
  for (; b < x.rows; ++b) int8_tile<Isa, R, 1>(x, b, w, o, y);
}

// The kernel: rows [row_begin, row_end) of W; GEMV row by row, GEMM in 4 x kBatchTile register tiles.
// Codes above Isa::kMaxExactCode (only from callers filling QuantizedActivations themselves) take the
// exact scalar reference.
template <class Isa>
void int8_run(const QuantizedActivations& x, const Int8Weights& w, std::int64_t row_begin,
              std::int64_t row_end, float* y) {
  if (x.max_code > Isa::kMaxExactCode) {
    qk::kernels::gemm_int8_ref(x, w, row_begin, row_end, y);
    return;
  }
  if (x.rows == 1) {
    for (std::int64_t o = row_begin; o < row_end; ++o) int8_gemv_row<Isa>(x, w, o, y);
    return;
  }
  std::int64_t o = row_begin;
  for (; o + 4 <= row_end; o += 4) int8_rows<Isa, 4>(x, w, o, y);
  for (; o < row_end; ++o) int8_rows<Isa, 1>(x, w, o, y);
}

}  // namespace
