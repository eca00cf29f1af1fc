// INT8 weights with float32 activations (AVX2 + FMA), gemm_widen_avx2_impl.hpp with this policy: codes
// widened to float on the fly, one float32 sum per output, the row's scale applied once at the end, as
// the scalar reference does.
#include <immintrin.h>

#include "gemm_widen_avx2_impl.hpp"
#include "isa_variants.hpp"

namespace qk::kernels {

namespace {

struct WidenInt8 {
  using Weights = Int8Weights;
  using Code = std::int8_t;
  static const Code* row(const Weights& w, std::int64_t o) { return w.codes.data() + o * w.stride; }
  static __m256 load8(const Code* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static float finish(float sum, const Weights& w, std::int64_t o) {
    return sum * w.scales[static_cast<std::size_t>(o)];
  }
};

}  // namespace

void gemm_int8_float_avx2(const float* x, std::int64_t batch, const Int8Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y) {
  widen_run<WidenInt8>(x, batch, w, row_begin, row_end, y);
}

}  // namespace qk::kernels
