// Scalar float32 <-> IEEE binary16 conversions (core/half.hpp's rules): the reference of the SIMD variants.
#include "quantkit/core/half.hpp"
#include "quantkit/kernels/convert_kernels.hpp"

namespace qk::kernels {

void f32_to_f16_ref(const float* x, std::int64_t n, std::uint16_t* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = float_to_half_bits(x[i]);
}
void f16_to_f32_ref(const std::uint16_t* x, std::int64_t n, float* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = half_bits_to_float(x[i]);
}

}  // namespace qk::kernels
