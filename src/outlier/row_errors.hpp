// Output errors of approximate weights, row by row: d_r H d_r^T for each row r of d = w - approx, with H
// the layer's Hessian. Private to src/ (uses Eigen); shared by the method dispatch and AWQ.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <span>
#include <vector>

#include "quantkit/kernels/gemm.hpp"

namespace qk::detail {

// Rows [first, first + rows) of d = w - approx, in double.
void difference_rows(std::span<const float> w, std::span<const float> approx, std::int64_t first,
                     std::int64_t rows, std::int64_t in, Eigen::MatrixXd& d);

// d_r H d_r^T for every row r of d = w - approx, kRowBlock rows per matrix product: the speed of a GEMM,
// with temporaries of 2 x kRowBlock x in doubles instead of 2 x out x in (four times a float layer).
Eigen::VectorXd row_output_errors(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                                  std::int64_t in, const Eigen::Ref<const Eigen::MatrixXd>& hessian);

// The same exactly (double) at half a GEMM's cost: H is symmetric, so
// d H d^T = sum_i d_i (H_ii d_i + 2 sum_{j<i} H_ij d_j), a triangular product.
Eigen::VectorXd exact_row_errors(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                                 std::int64_t in, const Eigen::Ref<const Eigen::MatrixXd>& hessian);

// Row errors d_r H d_r^T in float on the library's FP32 GEMM (AVX2+FMA where the CPU has it: about four
// times Eigen's double product in this baseline build), summed in double. Only for choices (alpha, a
// row's clip): a relative error near 1e-6 can only swap candidates that are tied to that precision.
// H is symmetric, so with its inputs cut into `parts` blocks only the blocks on and above the diagonal
// are multiplied (the ones above count twice): (parts + 1) / (2 parts) of a full product, 62% at 4.
// Each float block is converted from H where it is used, once per 256 rows (1/256 of the block's
// product): keeping all of them (5/8 of an in x in float matrix, 40 MiB at 4096) was AWQ's peak memory
// for a 3-4% gain in time.
class FloatRowErrors {
 public:
  // `hessian` must outlive this object.
  FloatRowErrors(const Eigen::Map<const Eigen::MatrixXd>& hessian, std::int64_t in);
  // Rows 0 .. out-1 of w and approx ([out, in] row-major).
  Eigen::VectorXd operator()(std::span<const float> w, std::span<const float> approx, std::int64_t out);

 private:
  // H[j block, i block] in float, row by row, into b.
  void convert_block(std::int64_t i, std::int64_t j, kernels::Fp32Weights& b) const;

  Eigen::Map<const Eigen::MatrixXd> hessian_;
  std::int64_t in_, parts_ = 1, part_ = 0;
  kernels::Fp32Weights block_;  // the block in use
  std::vector<std::vector<float>> d_;
  std::vector<float> y_;
};

}  // namespace qk::detail
