// INT4 GEMV/GEMM (AVX-512 VNNI on 256-bit vectors): vpdpbusd adds four u8*s8 products straight into
// int32. Its lanes hold the same four products as the AVX2 path's, so both give identical results.
#include <immintrin.h>

#include "gemm_int4_impl.hpp"
#include "isa_variants.hpp"

namespace qk::kernels {

namespace {

struct VnniDot {
  template <int N>
  static __m256i dot(const __m256i* x, const __m256i* nibbles) {
    __m256i sum = _mm256_dpbusd_epi32(_mm256_setzero_si256(), x[0], nibbles[0]);
    for (int i = 1; i < N; ++i) sum = _mm256_dpbusd_epi32(sum, x[i], nibbles[i]);
    return sum;
  }
  // GEMM register tiles (rows of W x rows of X): 2 x 4 for every group size.
  static constexpr int tile_rows(int) { return 2; }
  static constexpr int tile_batch(int) { return 4; }
};

}  // namespace

void gemm_int4_avx512vnni(const QuantizedActivations& x, const Int4Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y) {
  int4_kernel<VnniDot>(x, w, row_begin, row_end, y);
}

}  // namespace qk::kernels
