// FP16 GEMV/GEMM (AVX2 + FMA + F16C), gemm_widen_avx2_impl.hpp with this policy: weights widened with
// vcvtph2ps, products and sums in float32.
#include <immintrin.h>

#include "gemm_widen_avx2_impl.hpp"
#include "isa_variants.hpp"

namespace qk::kernels {

namespace {

struct WidenFp16 {
  using Weights = Fp16Weights;
  using Code = std::uint16_t;
  static const Code* row(const Weights& w, std::int64_t o) { return w.bits.data() + o * w.stride; }
  static __m256 load8(const Code* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float finish(float sum, const Weights&, std::int64_t) { return sum; }
};

}  // namespace

void gemm_fp16_avx2(const float* x, std::int64_t batch, const Fp16Weights& w, std::int64_t row_begin,
                    std::int64_t row_end, float* y) {
  widen_run<WidenFp16>(x, batch, w, row_begin, row_end, y);
}

}  // namespace qk::kernels
