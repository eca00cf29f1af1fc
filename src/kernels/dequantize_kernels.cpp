// The dispatched dequantize kernels (chosen once, on first use, from registries.cpp).
#include "quantkit/kernels/dequantize_kernels.hpp"

namespace qk::kernels {

void dequantize_i8_f32(const std::int8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                       float* out) {
  static const DequantizeI8Fn fn = select(dequantize_i8_variants());
  fn(q, n, scale, zero_point, out);
}

void dequantize_u8_f32(const std::uint8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                       float* out) {
  static const DequantizeU8Fn fn = select(dequantize_u8_variants());
  fn(q, n, scale, zero_point, out);
}

}  // namespace qk::kernels
