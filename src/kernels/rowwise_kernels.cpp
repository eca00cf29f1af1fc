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

void rowwise_gather_u8(const std::uint8_t* rows, std::int64_t row_bytes, const std::int64_t* ids,
                       std::int64_t n, std::int64_t dim, float* out) {
  static const RowwiseGatherFn fn = select(rowwise_gather_u8_variants());
  fn(rows, row_bytes, ids, n, dim, out);
}

}  // namespace qk::kernels
