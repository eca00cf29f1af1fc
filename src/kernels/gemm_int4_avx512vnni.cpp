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
};

}  // namespace

void gemm_int4_avx512vnni(const QuantizedActivations& x, const Int4Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y) {
  thread_local std::vector<float> sums;
  thread_local AlignedVector<std::uint8_t> codes;
  const Int4Job job{x, w, int4_reorder(x, codes), int4_group_sums8(x, w, sums), y};
  switch (w.group_size) {
    case 32:
      int4_run<VnniDot, 32, 2, 4>(job, row_begin, row_end);
      break;
    case 64:
      int4_run<VnniDot, 64, 2, 4>(job, row_begin, row_end);
      break;
    default:
      int4_run<VnniDot, 128, 2, 4>(job, row_begin, row_end);
      break;
  }
}

}  // namespace qk::kernels
