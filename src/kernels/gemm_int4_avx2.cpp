// INT4 GEMV/GEMM (AVX2): vpmaddubsw (u8 activation codes x u8 nibbles as s8) then vpmaddwd by ones.
// Exactness: a product is at most 255 * 15, an int16 lane adds two, and a group adds at most four such
// lanes (G = 128) before widening: 4 * 2 * 255 * 15 = 30600 < 32767, so nothing saturates for any code.
#include <immintrin.h>

#include "gemm_int4_impl.hpp"
#include "isa_variants.hpp"

namespace qk::kernels {

namespace {

struct Avx2Dot {
  // int32 lanes, each the sum of four consecutive byte products, over N (x, nibbles) vector pairs.
  template <int N>
  static __m256i dot(const __m256i* x, const __m256i* nibbles) {
    __m256i pairs = _mm256_maddubs_epi16(x[0], nibbles[0]);
    for (int i = 1; i < N; ++i) pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(x[i], nibbles[i]));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
  }
  // GEMM register tiles (rows of W x rows of X) per group size: 2 x 2, and 1 x 4 for G = 128.
  static constexpr int tile_rows(int group) { return group == 128 ? 1 : 2; }
  static constexpr int tile_batch(int group) { return group == 128 ? 4 : 2; }
};

}  // namespace

void gemm_int4_avx2(const QuantizedActivations& x, const Int4Weights& w, std::int64_t row_begin,
                    std::int64_t row_end, float* y) {
  int4_kernel<Avx2Dot>(x, w, row_begin, row_end, y);
}

}  // namespace qk::kernels
