// The dispatched float32 <-> binary16 / bfloat16 conversions (chosen once, from registries.cpp).
#include "quantkit/kernels/convert_kernels.hpp"

namespace qk::kernels {

void f32_to_f16(const float* x, std::int64_t n, std::uint16_t* out) {
  static const F32ToBits16Fn fn = select(f32_to_f16_variants());
  fn(x, n, out);
}
void f16_to_f32(const std::uint16_t* x, std::int64_t n, float* out) {
  static const Bits16ToF32Fn fn = select(f16_to_f32_variants());
  fn(x, n, out);
}
void f32_to_bf16(const float* x, std::int64_t n, std::uint16_t* out) {
  static const F32ToBits16Fn fn = select(f32_to_bf16_variants());
  fn(x, n, out);
}
void bf16_to_f32(const std::uint16_t* x, std::int64_t n, float* out) {
  static const Bits16ToF32Fn fn = select(bf16_to_f32_variants());
  fn(x, n, out);
}

}  // namespace qk::kernels
