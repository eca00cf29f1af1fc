// Eigen FP32 GEMM for the baseline ISA (SSE2 on x86-64): the fallback of gemm_fp32_eigen_avx2.
#include "gemm_fp32_eigen_impl.hpp"
#include "isa_variants.hpp"

namespace qk::kernels {

void gemm_fp32_eigen(const float* x, std::int64_t batch, const Fp32Weights& w, std::int64_t row_begin,
                     std::int64_t row_end, float* y) {
  eigen_gemm_rows(x, batch, w, row_begin, row_end, y);
}

}  // namespace qk::kernels
