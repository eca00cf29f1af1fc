// Scalar reference of the INT4 GEMM: each group summed exactly in integers and the scaled groups in
// double, the most accurate value the format allows, which the SIMD kernels approach within a stated
// bound.
#include "quantkit/kernels/gemm_kernels.hpp"

namespace qk::kernels {

void gemm_int4_ref(const QuantizedActivations& x, const Int4Weights& w, std::int64_t row_begin,
                   std::int64_t row_end, float* y) {
  const std::int64_t groups = w.groups_per_row();
  for (std::int64_t b = 0; b < x.rows; ++b) {
    const std::uint8_t* xr = x.codes.data() + b * x.stride;
    const std::int64_t za = x.zero_points[static_cast<std::size_t>(b)];
    for (std::int64_t o = row_begin; o < row_end; ++o) {
      const std::uint8_t* wr = w.packed.data() + o * w.stride / 2;
      double sum = 0.0;
      for (std::int64_t g = 0; g < groups; ++g) {
        std::int64_t acc = 0;
        for (std::int64_t k = g * w.group_size; k < (g + 1) * w.group_size; ++k) {
          const std::uint8_t byte = wr[k / 32 * 16 + k % 16];
          const std::int64_t code = ((k % 32 < 16) ? (byte & 0x0F) : (byte >> 4)) - 8;
          acc += (static_cast<std::int64_t>(xr[k]) - za) * code;
        }
        sum += static_cast<double>(w.scales[static_cast<std::size_t>(o * groups + g)]) *
               static_cast<double>(acc);
      }
      y[b * w.rows + o] = static_cast<float>(sum * x.scales[static_cast<std::size_t>(b)]);
    }
  }
}

}  // namespace qk::kernels
