// Scalar reference of the INT8 GEMM, golden rule 9 exactly: acc = Σ (qa - za) * qw in int32,
// y = float(acc) * (sa * sw).
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

}  // namespace qk::kernels
