// float32 <-> binary16 with F16C (vcvtps2ph with round-to-nearest-even, vcvtph2ps); tails go to the
// scalar reference. Identical bits to the reference, NaN payloads included (tested exhaustively).
#include <immintrin.h>

#include "isa_variants.hpp"
#include "quantkit/kernels/convert_kernels.hpp"

namespace qk::kernels {

void f32_to_f16_avx2(const float* x, std::int64_t n, std::uint16_t* out) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  f32_to_f16_ref(x + i, n - i, out + i);
}

void f16_to_f32_avx2(const std::uint16_t* x, std::int64_t n, float* out) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  f16_to_f32_ref(x + i, n - i, out + i);
}

}  // namespace qk::kernels
