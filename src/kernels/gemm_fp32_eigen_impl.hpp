// The Eigen FP32 GEMM, included by gemm_fp32_eigen.cpp (baseline ISA) and gemm_fp32_eigen_avx2.cpp
// (-mavx2 -mfma). Internal linkage, so the two compilations never merge.
#pragma once

#include <Eigen/Core>

#include "quantkit/kernels/gemm_kernels.hpp"

namespace {

void eigen_gemm_rows(const float* x, std::int64_t batch, const qk::kernels::Fp32Weights& w,
                     std::int64_t row_begin, std::int64_t row_end, float* y) {
  // Nothing to compute; and y may be null then (an empty output), where y + row_begin is undefined.
  if (batch == 0 || row_end <= row_begin) return;
  using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowMajorMatrix> weights(w.values.data() + row_begin * w.cols, row_end - row_begin,
                                                 w.cols);
  if (batch == 1) {
    const Eigen::Map<const Eigen::VectorXf> xv(x, w.cols);
    Eigen::Map<Eigen::VectorXf> yv(y + row_begin, row_end - row_begin);
    yv.noalias() = weights * xv;
    return;
  }
  const Eigen::Map<const RowMajorMatrix> xm(x, batch, w.cols);
  Eigen::Map<RowMajorMatrix, 0, Eigen::OuterStride<>> ym(y + row_begin, batch, row_end - row_begin,
                                                         Eigen::OuterStride<>(w.rows));
  ym.noalias() = xm * weights.transpose();
}

}  // namespace
