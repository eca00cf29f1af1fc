// NF4 GEMV (AVX2): x split once per call into its even and odd elements (deinterleave.hpp), levels looked
// up in registers, one float32 partial sum per group scaled by the group's scale.
#include <immintrin.h>

#include "block4_avx2.hpp"
#include "deinterleave.hpp"
#include "isa_variants.hpp"
#include "quantkit/kernels/block_kernels.hpp"

namespace qk::kernels {

// GEMV: x is split once per call into its even and odd elements (deinterleave.hpp), so
// that a byte's low nibbles meet the even x and its high nibbles the odd x with no shuffle of the codes:
// eight bytes give sixteen weights, two lookups, two FMAs into independent partial sums. group_size is a
// multiple of kNf4SimdGroup (16 bytes per step).
void gemv_nf4_avx2(const std::uint8_t* codes, const float* scales, std::int64_t rows, std::int64_t cols,
                   std::int64_t group_size, const float* x, float* y) {
  const Nf4Table table;
  const DeinterleavedX xs(x, cols);
  const std::int64_t groups = cols / group_size;
  const std::int64_t half = group_size / 2;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::uint8_t* row = codes + r * cols / 2;
    __m256 acc = _mm256_setzero_ps();
    for (std::int64_t g = 0; g < groups; ++g) {
      const std::uint8_t* group = row + g * half;
      const float* even = xs.even() + g * half;
      const float* odd = xs.odd() + g * half;
      __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (std::int64_t j = 0; j < half; j += 16) {
        for (int k = 0; k < 2; ++k) {
          const __m256i bytes = bytes8(group + j + 8 * k);
          s[2 * k] = _mm256_fmadd_ps(nf4_levels8(bytes, table), _mm256_loadu_ps(even + j + 8 * k), s[2 * k]);
          s[2 * k + 1] = _mm256_fmadd_ps(nf4_levels8(_mm256_srli_epi32(bytes, 4), table),
                                         _mm256_loadu_ps(odd + j + 8 * k), s[2 * k + 1]);
        }
      }
      const __m256 sum = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
      acc = _mm256_fmadd_ps(sum, _mm256_set1_ps(scales[r * groups + g]), acc);
    }
    y[r] = hsum(acc);
  }
}

}  // namespace qk::kernels
