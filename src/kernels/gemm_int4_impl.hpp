// The INT4 GEMV/GEMM shared by the AVX2 and the AVX-512 VNNI files, which differ only in the policy
// (Dot): the integer dot product and the register tile per group size. Included by those files only;
// everything here has internal linkage.
//
// Per output y[b, o] with activation codes x (zero point za, scale sa) and weight nibbles n = code + 8:
//   Σ_k (x - za) * (n - 8) * s_g  =  Σ_g s_g * Σ_k∈g x*n  -  Σ_g s_g * 8 * Σ_k∈g x  -  za * Σ_g s_g * Σ_k∈g
//   code
// The first sum is the hot loop: u8 x times u8 nibbles (valid s8 operands), summed exactly in int32 per
// group and scaled once per group (two groups of 32 at once, one per 128-bit lane). The second is a short dot
// product over groups (block sums of the codes, kept with the activations); the third is zero_point_terms[o],
// computed at packing.
#pragma once

#include <immintrin.h>

#include <cstring>
#include <vector>

#include "quantkit/kernels/gemm_kernels.hpp"
#include "simd_x86.hpp"

namespace {

using qk::kernels::Int4Weights;
using qk::kernels::QuantizedActivations;

struct Int4Job {
  const QuantizedActivations& x;
  const Int4Weights& w;
  const std::uint8_t* codes;  // x.codes in the weights' nibble order (int4_reorder)
  const float* group_sums8;   // [x.rows, groups]: 8 * Σ codes of each group of each activation row
  float* y;
};

// Activation codes in the order the unpacked nibbles come in: per 64 columns, a load of 32 bytes gives
// the low nibbles of columns [0, 16) and [32, 48) and the high nibbles of [16, 32) and [48, 64).
inline const std::uint8_t* int4_reorder(const QuantizedActivations& x,
                                        qk::kernels::AlignedVector<std::uint8_t>& buffer) {
  buffer.resize(x.codes.size());
  for (std::size_t k = 0; k < x.codes.size(); k += 64) {
    const std::uint8_t* in = x.codes.data() + k;
    std::uint8_t* out = buffer.data() + k;
    std::memcpy(out, in, 16);
    std::memcpy(out + 16, in + 32, 16);
    std::memcpy(out + 32, in + 16, 16);
    std::memcpy(out + 48, in + 48, 16);
  }
  return buffer.data();
}

// Σ_g scale[g] * sums8[g] in a fixed order (four 8-lane accumulators, then the tail), the same for every
// tile; four chains, because one FMA chain over 128 groups cost a fifth of a 4096-column GEMV row.
inline float group_correction(const float* scale, const float* sums8, std::int64_t groups) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  std::int64_t g = 0;
  for (; g + 32 <= groups; g += 32)
    for (int j = 0; j < 4; ++j)
      acc[j] =
          _mm256_fmadd_ps(_mm256_loadu_ps(scale + g + 8 * j), _mm256_loadu_ps(sums8 + g + 8 * j), acc[j]);
  for (; g + 8 <= groups; g += 8)
    acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(scale + g), _mm256_loadu_ps(sums8 + g), acc[0]);
  float total = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; g < groups; ++g) total += scale[g] * sums8[g];
  return total;
}

// y[b, o] from the scaled group sums of the hot loop: the activation-sum and zero-point terms.
inline void int4_store(const Int4Job& job, std::int64_t b, std::int64_t o, float main) {
  const Int4Weights& w = job.w;
  const std::int64_t groups = w.groups_per_row();
  const float offset = group_correction(w.scales.data() + o * groups, job.group_sums8 + b * groups, groups);
  const float zero_point = static_cast<float>(job.x.zero_points[static_cast<std::size_t>(b)]) *
                           w.zero_point_terms[static_cast<std::size_t>(o)];
  job.y[b * w.rows + o] = job.x.scales[static_cast<std::size_t>(b)] * ((main - offset) - zero_point);
}

// One step of the hot loop covers max(64, G) columns: for G = 32 two groups (one per 128-bit lane), else
// one group. kLoads 256-bit loads of nibbles, 2 * kLoads (activation, nibbles) vector pairs.
template <int G>
struct Int4Step {
  static constexpr std::int64_t kColumns = G < 64 ? 64 : G;
  static constexpr int kLoads = static_cast<int>(kColumns / 64);
  static constexpr int kPairs = 2 * kLoads;
};

template <int G>
inline void int4_unpack(const std::uint8_t* packed, __m256i* nibbles) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  for (int c = 0; c < Int4Step<G>::kLoads; ++c) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed + 32 * c));
    nibbles[2 * c] = _mm256_and_si256(v, low);
    nibbles[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
  }
}

// The step's scales: for G = 32, group g in the low lane and g + 1 in the high lane.
template <int G>
inline __m256 int4_scales(const float* s) {
  if constexpr (G == 32) {
    const __m128 two = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s)));
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(two), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
  } else {
    return _mm256_broadcast_ss(s);
  }
}

// GEMV: one row at a time, so the weights are read as one sequential stream (interleaved rows measured
// ~35% slower here), with four float accumulators used in a fixed rotation to hide the FMA latency.
template <class Dot, int G>
void int4_gemv_row(const Int4Job& job, std::int64_t o) {
  using Step = Int4Step<G>;
  const Int4Weights& w = job.w;
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const std::uint8_t* wr = w.packed.data() + o * (w.stride / 2);
  const float* sr = w.scales.data() + o * w.groups_per_row();
  const auto step = [&](std::int64_t k, __m256 a) {
    __m256i nibbles[Step::kPairs], xv[Step::kPairs];
    int4_unpack<G>(wr + k / 2, nibbles);
    for (int c = 0; c < Step::kPairs; ++c)
      xv[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(job.codes + k + 32 * c));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(Dot::template dot<Step::kPairs>(xv, nibbles)),
                           int4_scales<G>(sr + k / G), a);
  };
  // Four steps per iteration into the accumulators by name (an array indexed by step & 3 stayed on the
  // stack: a load and a store per step), then the remaining steps in the same rotation.
  constexpr std::int64_t kC = Step::kColumns;
  std::int64_t k = 0;
  for (; k + 4 * kC <= w.stride; k += 4 * kC) {
    acc[0] = step(k, acc[0]);
    acc[1] = step(k + kC, acc[1]);
    acc[2] = step(k + 2 * kC, acc[2]);
    acc[3] = step(k + 3 * kC, acc[3]);
  }
  if (k < w.stride) acc[0] = step(k, acc[0]), k += kC;
  if (k < w.stride) acc[1] = step(k, acc[1]), k += kC;
  if (k < w.stride) acc[2] = step(k, acc[2]), k += kC;
  int4_store(job, 0, o, hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))));
}

// GEMM: R weight rows against B activation rows, group size G, one accumulator per output.
template <class Dot, int R, int B, int G>
void int4_tile(const Int4Job& job, std::int64_t b0, std::int64_t o0) {
  using Step = Int4Step<G>;
  const Int4Weights& w = job.w;
  const std::int64_t groups = w.groups_per_row();
  const std::int64_t x_stride = job.x.stride;
  __m256 acc[R][B];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) acc[r][b] = _mm256_setzero_ps();
  const std::uint8_t* wp = w.packed.data() + o0 * (w.stride / 2);
  const std::uint8_t* xp = job.codes + b0 * x_stride;
  const float* sp = w.scales.data() + o0 * groups;
  for (std::int64_t k = 0; k < w.stride; k += Step::kColumns) {
    __m256i nibbles[R][Step::kPairs];
    __m256 scales[R];
    for (int r = 0; r < R; ++r) {
      int4_unpack<G>(wp + r * (w.stride / 2) + k / 2, nibbles[r]);
      scales[r] = int4_scales<G>(sp + r * groups + k / G);
    }
    for (int b = 0; b < B; ++b) {
      __m256i xv[Step::kPairs];
      for (int c = 0; c < Step::kPairs; ++c)
        xv[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + b * x_stride + k + 32 * c));
      for (int r = 0; r < R; ++r)
        acc[r][b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Dot::template dot<Step::kPairs>(xv, nibbles[r])),
                                    scales[r], acc[r][b]);
    }
  }
  for (int b = 0; b < B; ++b)
    for (int r = 0; r < R; ++r) int4_store(job, b0 + b, o0 + r, hsum_ps(acc[r][b]));
}

template <class Dot, int R, int B, int G>
void int4_rows(const Int4Job& job, std::int64_t o, std::int64_t batch) {
  std::int64_t b = 0;
  for (; b + B <= batch; b += B) int4_tile<Dot, R, B, G>(job, b, o);
  for (; b < batch; ++b) int4_tile<Dot, R, 1, G>(job, b, o);
}

// GEMV row by row; GEMM in GemmR x GemmB register tiles (remainder rows one at a time).
template <class Dot, int G, int GemmR, int GemmB>
void int4_run(const Int4Job& job, std::int64_t row_begin, std::int64_t row_end) {
  const std::int64_t batch = job.x.rows;
  std::int64_t o = row_begin;
  if (batch == 1) {
    for (; o < row_end; ++o) int4_gemv_row<Dot, G>(job, o);
    return;
  }
  for (; o + GemmR <= row_end; o += GemmR) int4_rows<Dot, GemmR, GemmB, G>(job, o, batch);
  for (; o < row_end; ++o) int4_rows<Dot, 1, GemmB, G>(job, o, batch);
}

// 8 * the code sums of each group of each activation row, as floats (exact: < 2^24).
inline const float* int4_group_sums8(const QuantizedActivations& x, const Int4Weights& w,
                                     std::vector<float>& buffer) {
  const std::int64_t groups = w.groups_per_row();
  const std::int64_t blocks_per_group = w.group_size / QuantizedActivations::kBlock;
  const std::int64_t blocks = x.stride / QuantizedActivations::kBlock;
  buffer.resize(static_cast<std::size_t>(x.rows * groups));
  for (std::int64_t b = 0; b < x.rows; ++b) {
    for (std::int64_t g = 0; g < groups; ++g) {
      std::int32_t sum = 0;
      for (std::int64_t j = 0; j < blocks_per_group; ++j)
        sum += x.block_sums[static_cast<std::size_t>(b * blocks + g * blocks_per_group + j)];
      buffer[static_cast<std::size_t>(b * groups + g)] = 8.0f * static_cast<float>(sum);
    }
  }
  return buffer.data();
}

// The kernel: rows [row_begin, row_end) of W, in Dot::tile_rows(G) x Dot::tile_batch(G) tiles for GEMM.
template <class Dot>
void int4_kernel(const QuantizedActivations& x, const Int4Weights& w, std::int64_t row_begin,
                 std::int64_t row_end, float* y) {
  thread_local std::vector<float> sums;
  thread_local qk::kernels::AlignedVector<std::uint8_t> codes;
  const Int4Job job{x, w, int4_reorder(x, codes), int4_group_sums8(x, w, sums), y};
  switch (w.group_size) {
    case 32:
      int4_run<Dot, 32, Dot::tile_rows(32), Dot::tile_batch(32)>(job, row_begin, row_end);
      break;
    case 64:
      int4_run<Dot, 64, Dot::tile_rows(64), Dot::tile_batch(64)>(job, row_begin, row_end);
      break;
    default:
      int4_run<Dot, 128, Dot::tile_rows(128), Dot::tile_batch(128)>(job, row_begin, row_end);
      break;
  }
}

}  // namespace
