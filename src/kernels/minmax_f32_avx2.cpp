// AVX2 min/max over finite floats: four independent accumulators per bound hide the latency of minps.
#include <immintrin.h>

#include "isa_variants.hpp"
#include "quantkit/kernels/minmax_kernels.hpp"

namespace qk::kernels {

namespace {
float reduce(__m256 v, bool want_min) {
  __m128 r = want_min ? _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))
                      : _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 shuf = _mm_movehl_ps(r, r);
  r = want_min ? _mm_min_ps(r, shuf) : _mm_max_ps(r, shuf);
  const __m128 one = _mm_shuffle_ps(r, r, 0x55);
  r = want_min ? _mm_min_ss(r, one) : _mm_max_ss(r, one);
  return _mm_cvtss_f32(r);
}
}  // namespace

void minmax_f32_avx2(const float* x, std::int64_t n, float* lo, float* hi) {
  std::int64_t i = 0;
  if (n >= 32) {
    __m256 mn[4], mx[4];
    for (int k = 0; k < 4; ++k) mn[k] = mx[k] = _mm256_loadu_ps(x + 8 * k);
    for (i = 32; i + 32 <= n; i += 32) {
      for (int k = 0; k < 4; ++k) {
        const __m256 v = _mm256_loadu_ps(x + i + 8 * k);
        mn[k] = _mm256_min_ps(mn[k], v);
        mx[k] = _mm256_max_ps(mx[k], v);
      }
    }
    const __m256 a = _mm256_min_ps(_mm256_min_ps(mn[0], mn[1]), _mm256_min_ps(mn[2], mn[3]));
    const __m256 b = _mm256_max_ps(_mm256_max_ps(mx[0], mx[1]), _mm256_max_ps(mx[2], mx[3]));
    const float run_lo = reduce(a, true), run_hi = reduce(b, false);
    if (run_lo < *lo) *lo = run_lo;
    if (run_hi > *hi) *hi = run_hi;
  }
  minmax_f32_ref(x + i, n - i, lo, hi);
}

}  // namespace qk::kernels
