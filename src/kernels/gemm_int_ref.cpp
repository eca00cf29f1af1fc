// Scalar references of the integer GEMMs. INT8 is golden rule 9 exactly: acc = Σ (qa - za) * qw in int32,
// y = float(acc) * (sa * sw). INT4 sums each group exactly in integers and the scaled groups in double:
// the most accurate value the format allows, which the SIMD kernels approach within a stated bound.
#include "quantkit/kernels/gemm_kernels.hpp"

namespace qk::kernels {

void gemm_int8_ref(const QuantizedActivations& x, const Int8Weights& w, std::int64_t row_begin,
                   std::int64_t row_end, float* y) {
  for (std::int64_t b = 0; b < x.rows; ++b) {
    const std::uint8_t* xr = x.codes.data() + b * x.stride;
    const std::int64_t za = x.zero_points[static_cast<std::size_t>(b)];
    for (std::int64_t o = row_begin; o < row_end; ++o) {
      const std::int8_t* wr = w.codes.data() + o * w.stride;
      std::int64_t acc = 0;
      for (std::int64_t k = 0; k < w.cols; ++k) acc += (static_cast<std::int64_t>(xr[k]) - za) * wr[k];
      const float scale = x.scales[static_cast<std::size_t>(b)] * w.scales[static_cast<std::size_t>(o)];
      y[b * w.rows + o] = static_cast<float>(static_cast<std::int32_t>(acc)) * scale;
    }
  }
}

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
