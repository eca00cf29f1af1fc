// Scalar reference of the dequantize kernels: exactly core/quantize.hpp's dequantize_value.
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/dequantize_kernels.hpp"

namespace qk::kernels {

namespace {
template <class Q>
void dequantize_ref(const Q* q, std::int64_t n, float scale, std::int32_t zero_point, float* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = dequantize_value<float>(q[i], scale, zero_point);
}
}  // namespace

void dequantize_i8_f32_ref(const std::int8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                           float* out) {
  dequantize_ref(q, n, scale, zero_point, out);
}
void dequantize_u8_f32_ref(const std::uint8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                           float* out) {
  dequantize_ref(q, n, scale, zero_point, out);
}

}  // namespace qk::kernels
