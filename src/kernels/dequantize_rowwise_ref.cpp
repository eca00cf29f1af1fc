// Scalar row-wise dequantization of 8- and 4-bit embedding rows and the 8-bit row gather: the references
// of the SIMD variants.
#include "quantkit/core/half.hpp"
#include "quantkit/kernels/rowwise_kernels.hpp"
#include "rowwise_gather.hpp"

namespace qk::kernels {

void rowwise_dequantize_u8_ref(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                               float* out) {
  for (std::int64_t d = 0; d < dim; ++d) out[d] = static_cast<float>(codes[d]) * scale + bias;
}

void rowwise_dequantize_u4_ref(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                               float* out) {
  for (std::int64_t d = 0; d < dim; ++d) {
    const unsigned code = (codes[d / 2] >> ((d % 2) * 4)) & 0x0Fu;
    out[d] = static_cast<float>(code) * scale + bias;
  }
}

void rowwise_gather_u8_ref(const std::uint8_t* rows, std::int64_t row_bytes, const std::int64_t* ids,
                           std::int64_t n, std::int64_t dim, float* out) {
  for (std::int64_t i = 0; i < n; ++i) {
    detail::prefetch_gather_row(rows, row_bytes, ids, n, i);
    const std::uint8_t* row = rows + ids[i] * row_bytes;
    const std::uint32_t scale_bias = detail::scale_bias_bits(row, dim);
    rowwise_dequantize_u8_ref(row, dim, half_bits_to_float(static_cast<std::uint16_t>(scale_bias)),
                              half_bits_to_float(static_cast<std::uint16_t>(scale_bias >> 16)),
                              out + i * dim);
  }
}

}  // namespace qk::kernels
