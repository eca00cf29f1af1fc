// Scalar reference of the FP32 GEMM: one float32 sum per output, in column order.
#include "quantkit/kernels/gemm_kernels.hpp"

namespace qk::kernels {

void gemm_fp32_ref(const float* x, std::int64_t batch, const Fp32Weights& w, std::int64_t row_begin,
                   std::int64_t row_end, float* y) {
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t o = row_begin; o < row_end; ++o) {
      const float* wr = w.values.data() + o * w.cols;
      float sum = 0.0f;
      for (std::int64_t k = 0; k < w.cols; ++k) sum += x[b * w.cols + k] * wr[k];
      y[b * w.rows + o] = sum;
    }
  }
}

}  // namespace qk::kernels
