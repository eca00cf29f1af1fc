// INT8 GEMV/GEMM with uint8 activations (AVX2), gemm_int8_impl.hpp with this policy: vpmaddubsw
// multiplies the activation codes (u8) by the weight codes (s8) and adds pairs into int16, vpmaddwd by
// ones widens the pairs into int32. Exactness: the int16 pair sum is exact while activation codes are
// <= 128 (quantized_activations.hpp explains why reduce_range guarantees it); for larger codes the exact
// scalar reference runs instead.
#include <immintrin.h>

#include "gemm_int8_impl.hpp"
#include "isa_variants.hpp"

namespace qk::kernels {

namespace {

struct Avx2Int8 {
  using Vec = __m256i;
  static constexpr std::int64_t kBytes = 32;
  static constexpr int kBatchTile = 2;
  static constexpr std::int32_t kMaxExactCode = 128;
  static Vec zero() { return _mm256_setzero_si256(); }
  static Vec load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static Vec dot(Vec acc, Vec x, Vec w) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), _mm256_set1_epi16(1)));
  }
  static Vec add(Vec a, Vec b) { return _mm256_add_epi32(a, b); }
  static std::int32_t hsum(Vec v) { return hsum_epi32(v); }
};

}  // namespace

void gemm_int8_avx2(const QuantizedActivations& x, const Int8Weights& w, std::int64_t row_begin,
                    std::int64_t row_end, float* y) {
  int8_run<Avx2Int8>(x, w, row_begin, row_end, y);
}

}  // namespace qk::kernels
