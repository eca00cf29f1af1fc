// NF4 dequantize (AVX2): eight codes at a time, levels looked up in registers, one multiply by the
// group's scale per value, as the reference: identical bits.
#include <immintrin.h>

#include "block4_avx2.hpp"
#include "isa_variants.hpp"
#include "quantkit/kernels/block_kernels.hpp"

namespace qk::kernels {

// group_size is a multiple of kNf4SimdGroup, so a group is whole runs of eight codes.
void dequantize_nf4_avx2(const std::uint8_t* codes, const float* scales, std::int64_t n,
                         std::int64_t group_size, float* out) {
  const Nf4Table table;
  for (std::int64_t g = 0; g < n / group_size; ++g) {
    const __m256 scale = _mm256_set1_ps(scales[g]);
    for (std::int64_t j = g * group_size; j < (g + 1) * group_size; j += 8)
      _mm256_storeu_ps(out + j, _mm256_mul_ps(nf4_levels8(nibbles8(codes, j), table), scale));
  }
}

}  // namespace qk::kernels
