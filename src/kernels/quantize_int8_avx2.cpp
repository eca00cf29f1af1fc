// AVX2 quantize kernels (compiled with -mavx2 -mfma -mf16c only). Same codes as the scalar reference:
// the multiply is the same float32 operation, _mm256_round_ps rounds half to even like nearbyint, and
// the clamp happens in the rounded domain, where max_ps(NaN, lo) yields lo so NaN lands on qmin.
#include <immintrin.h>

#include <type_traits>

#include "isa_variants.hpp"
#include "quantkit/kernels/quantize_kernels.hpp"

namespace qk::kernels {

namespace {

template <class Q>
void quantize_avx2(const float* x, std::int64_t n, QuantizeRun run, Q* out) {
  const __m256 inv = _mm256_set1_ps(run.inv_scale);
  // Both bounds are small integers (8-bit codes), exact in float.
  const __m256 lo = _mm256_set1_ps(static_cast<float>(run.qmin - run.zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(run.qmax - run.zero_point));
  const __m256i zp = _mm256_set1_epi32(run.zero_point);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undo the per-lane interleave of packs
  auto codes = [&](const float* p) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(p), inv);
    const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 c = _mm256_min_ps(_mm256_max_ps(r, lo), hi);  // operand order matters for NaN
    return _mm256_add_epi32(_mm256_cvtps_epi32(c), zp);
  };
  std::int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i ab = _mm256_packs_epi32(codes(x + i), codes(x + i + 8));
    const __m256i cd = _mm256_packs_epi32(codes(x + i + 16), codes(x + i + 24));
    // Codes already lie in [qmin, qmax], so neither pack saturates anything.
    const __m256i bytes = std::is_signed_v<Q> ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_permutevar8x32_epi32(bytes, order));
  }
  if (i < n) {
    if constexpr (std::is_signed_v<Q>) {
      quantize_f32_i8_ref(x + i, n - i, run, out + i);
    } else {
      quantize_f32_u8_ref(x + i, n - i, run, out + i);
    }
  }
}

}  // namespace

void quantize_f32_i8_avx2(const float* x, std::int64_t n, QuantizeRun run, std::int8_t* out) {
  quantize_avx2(x, n, run, out);
}
void quantize_f32_u8_avx2(const float* x, std::int64_t n, QuantizeRun run, std::uint8_t* out) {
  quantize_avx2(x, n, run, out);
}

}  // namespace qk::kernels
