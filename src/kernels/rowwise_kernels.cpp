// The dispatched row-wise dequantize kernels (chosen once, from registries.cpp).
#include "quantkit/kernels/rowwise_kernels.hpp"

namespace qk::kernels {

void rowwise_dequantize_u8(const std::uint8_t* codes, std::int64_t dim, float scale, float bias, float* out) {
  static const RowwiseDequantizeFn fn = select(rowwise_dequantize_u8_variants());
  fn(codes, dim, scale, bias, out);
}
void rowwise_dequantize_u4(const std::uint8_t* codes, std::int64_t dim, float scale, float bias, float* out) {
  static const RowwiseDequantizeFn fn = select(rowwise_dequantize_u4_variants());
  fn(codes, dim, scale, bias, out);
}

}  // namespace qk::kernels
