// INT8 GEMV/GEMM with dynamic uint8 activations (AVX2): vpmaddubsw multiplies the activation codes (u8)
// by the weight codes (s8) and adds pairs into int16, vpmaddwd by ones widens the pairs into int32.
// Exactness: the int16 pair sum is exact while activation codes are <= 128 (quantized_activations.hpp
// explains why reduce_range guarantees it); for larger codes the exact scalar reference runs instead.
// The int32 sums wrap like the reference's int32 accumulator (cols <= 65536 keeps them in range).
#include <immintrin.h>

#include "quantkit/kernels/gemm_kernels.hpp"
#include "simd_x86.hpp"

namespace qk::kernels {

namespace {

constexpr std::int32_t kMaxExactCode = 128;

template <int R, int B>
void tile(const QuantizedActivations& x, std::int64_t b0, const Int8Weights& w, std::int64_t o0, float* y) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[R][B];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) acc[r][b] = _mm256_setzero_si256();
  const std::int8_t* wp = w.codes.data() + o0 * w.stride;
  const std::uint8_t* xp = x.codes.data() + b0 * x.stride;
  for (std::int64_t k = 0; k < w.stride; k += 32) {
    __m256i wv[R];
    for (int r = 0; r < R; ++r)
      wv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + r * w.stride + k));
    for (int b = 0; b < B; ++b) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + b * x.stride + k));
      for (int r = 0; r < R; ++r)
        acc[r][b] = _mm256_add_epi32(acc[r][b], _mm256_madd_epi16(_mm256_maddubs_epi16(xv, wv[r]), ones));
    }
  }
  for (int b = 0; b < B; ++b) {
    const auto bi = static_cast<std::size_t>(b0 + b);
    for (int r = 0; r < R; ++r) {
      const auto o = static_cast<std::size_t>(o0 + r);
      // acc - za * Σw is Σ (qa - za) * qw, exact modulo 2^32 and so exact once the true value fits int32.
      const auto sum = static_cast<std::int32_t>(static_cast<std::uint32_t>(hsum_epi32(acc[r][b])) -
                                                 static_cast<std::uint32_t>(x.zero_points[bi]) *
                                                     static_cast<std::uint32_t>(w.row_sums[o]));
      y[static_cast<std::int64_t>(bi) * w.rows + static_cast<std::int64_t>(o)] =
          static_cast<float>(sum) * (x.scales[bi] * w.scales[o]);
    }
  }
}

// GEMV: one row at a time, so the weights are read as one sequential stream (four interleaved rows
// measured ~35% slower here: the prefetchers follow one stream across pages better than four), with two
// accumulators (64 columns per step) to keep the adds off the critical path.
void gemv_row(const QuantizedActivations& x, const Int8Weights& w, std::int64_t o, float* y) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  const std::int8_t* wr = w.codes.data() + o * w.stride;
  for (std::int64_t k = 0; k < w.stride; k += 64) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.codes.data() + k));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.codes.data() + k + 32));
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + k));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + k + 32));
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(x0, w0), ones));
    acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_maddubs_epi16(x1, w1), ones));
  }
  const auto sum =
      static_cast<std::int32_t>(static_cast<std::uint32_t>(hsum_epi32(_mm256_add_epi32(acc0, acc1))) -
                                static_cast<std::uint32_t>(x.zero_points[0]) *
                                    static_cast<std::uint32_t>(w.row_sums[static_cast<std::size_t>(o)]));
  y[o] = static_cast<float>(sum) * (x.scales[0] * w.scales[static_cast<std::size_t>(o)]);
}

template <int R>
void rows_tile(const QuantizedActivations& x, const Int8Weights& w, std::int64_t o, float* y) {
  std::int64_t b = 0;
  for (; b + 2 <= x.rows; b += 2) tile<R, 2>(x, b, w, o, y);
  if (b < x.rows) tile<R, 1>(x, b, w, o, y);
}

}  // namespace

void gemm_int8_avx2(const QuantizedActivations& x, const Int8Weights& w, std::int64_t row_begin,
                    std::int64_t row_end, float* y) {
  if (x.max_code > kMaxExactCode) {
    gemm_int8_ref(x, w, row_begin, row_end, y);
    return;
  }
  if (x.rows == 1) {
    for (std::int64_t o = row_begin; o < row_end; ++o) gemv_row(x, w, o, y);
    return;
  }
  std::int64_t o = row_begin;
  for (; o + 4 <= row_end; o += 4) rows_tile<4>(x, w, o, y);
  for (; o < row_end; ++o) rows_tile<1>(x, w, o, y);
}

}  // namespace qk::kernels
