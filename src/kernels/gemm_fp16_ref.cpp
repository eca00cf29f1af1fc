// Scalar reference of the FP16 GEMM: weights widened exactly to float32, one float32 sum per output, in
// column order.
#include "quantkit/core/half.hpp"
#include "quantkit/kernels/gemm_kernels.hpp"

namespace qk::kernels {

void gemm_fp16_ref(const float* x, std::int64_t batch, const Fp16Weights& w, std::int64_t row_begin,
                   std::int64_t row_end, float* y) {
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t o = row_begin; o < row_end; ++o) {
      const std::uint16_t* wr = w.bits.data() + o * w.stride;
      float sum = 0.0f;
      for (std::int64_t k = 0; k < w.cols; ++k) sum += x[b * w.stride + k] * half_bits_to_float(wr[k]);
      y[b * w.rows + o] = sum;
    }
  }
}

}  // namespace qk::kernels
