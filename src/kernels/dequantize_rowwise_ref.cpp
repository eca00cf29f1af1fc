// Scalar row-wise dequantization of 8- and 4-bit embedding rows: the reference of the SIMD variants.
#include "quantkit/kernels/rowwise_kernels.hpp"

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

}  // namespace qk::kernels
