// The dispatched quantize kernels (chosen once, on first use, from registries.cpp).
#include "quantkit/kernels/quantize_kernels.hpp"

namespace qk::kernels {

void quantize_f32_i8(const float* x, std::int64_t n, QuantizeRun run, std::int8_t* out) {
  static const QuantizeToI8Fn fn = select(quantize_i8_variants());
  fn(x, n, run, out);
}

void quantize_f32_u8(const float* x, std::int64_t n, QuantizeRun run, std::uint8_t* out) {
  static const QuantizeToU8Fn fn = select(quantize_u8_variants());
  fn(x, n, run, out);
}

}  // namespace qk::kernels
