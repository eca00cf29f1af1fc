// Scalar reference of the INT8 GEMM with float32 activations: one float32 sum of x * code per output, in
// column order, then the row's scale once.
#include "quantkit/kernels/gemm_kernels.hpp"

namespace qk::kernels {

void gemm_int8_float_ref(const float* x, std::int64_t batch, const Int8Weights& w, std::int64_t row_begin,
                         std::int64_t row_end, float* y) {
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t o = row_begin; o < row_end; ++o) {
      const std::int8_t* wr = w.codes.data() + o * w.stride;
      float sum = 0.0f;
      for (std::int64_t k = 0; k < w.cols; ++k) sum += x[b * w.stride + k] * static_cast<float>(wr[k]);
      y[b * w.rows + o] = sum * w.scales[static_cast<std::size_t>(o)];
    }
  }
}

}  // namespace qk::kernels
