// NF4 dequantize (AVX2): eight codes at a time, levels looked up in registers, one multiply by the
// block's absmax per value, as the reference: identical bits.
#include <immintrin.h>

#include "block4_avx2.hpp"
#include "isa_variants.hpp"
#include "quantkit/kernels/block_kernels.hpp"

namespace qk::kernels {

void dequantize_nf4_avx2(const BlockNf4* blocks, std::int64_t n, float* out) {
  const Nf4Table table;
  for (std::int64_t b = 0; b < n / BlockNf4::kWeights; ++b) {
    const __m256 absmax = _mm256_set1_ps(blocks[b].absmax);
    for (std::int64_t j = 0; j < BlockNf4::kWeights; j += 8)
      _mm256_storeu_ps(out + b * BlockNf4::kWeights + j,
                       _mm256_mul_ps(nf4_levels8(nibbles8(blocks[b].codes, j), table), absmax));
  }
}

}  // namespace qk::kernels
