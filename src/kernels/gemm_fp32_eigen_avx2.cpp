// Eigen FP32 GEMM compiled with -mavx2 -mfma: the fair FP32 baseline on a machine with AVX2.
// Eigen is header-only: the same template instantiated with other flags in another file would be merged
// by the linker (one copy wins, maybe the AVX2 one in baseline code). Renaming its namespace for this
// file keeps this copy's symbols apart.
#define Eigen qk_eigen_avx2
#include "gemm_fp32_eigen_impl.hpp"
#include "isa_variants.hpp"

namespace qk::kernels {

void gemm_fp32_eigen_avx2(const float* x, std::int64_t batch, const Fp32Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y) {
  eigen_gemm_rows(x, batch, w, row_begin, row_end, y);
}

}  // namespace qk::kernels
