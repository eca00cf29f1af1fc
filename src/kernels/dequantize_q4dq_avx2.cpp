// Double-quantized INT4 dequantize (AVX2): eight codes at a time, code - 8 converted exactly, one multiply
// by the group's scale per value, as the reference: identical bits.
#include <immintrin.h>

#include "block4_avx2.hpp"
#include "isa_variants.hpp"
#include "quantkit/kernels/block_kernels.hpp"

namespace qk::kernels {

void dequantize_q4dq_avx2(const BlockQ4DQ* blocks, std::int64_t n, float* out) {
  for (std::int64_t b = 0; b < n / BlockQ4DQ::kWeights; ++b) {
    for (std::int64_t j = 0; j < BlockQ4DQ::kWeights; j += 8) {
      const __m256 scale =
          _mm256_set1_ps(static_cast<float>(blocks[b].scales[j / BlockQ4DQ::kGroup]) * blocks[b].super_scale);
      _mm256_storeu_ps(out + b * BlockQ4DQ::kWeights + j,
                       _mm256_mul_ps(int4_values8(nibbles8(blocks[b].codes, j)), scale));
    }
  }
}

}  // namespace qk::kernels
