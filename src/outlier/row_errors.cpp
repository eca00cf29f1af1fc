// Row-by-row output errors: exact in double, or in float on the library's FP32 GEMM.
#include "row_errors.hpp"

#include <algorithm>

namespace qk::detail {

void difference_rows(std::span<const float> w, std::span<const float> approx, std::int64_t first,
                     std::int64_t rows, std::int64_t in, Eigen::MatrixXd& d) {
  d.resize(rows, in);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < in; ++c) {
      const auto k = static_cast<std::size_t>((first + r) * in + c);
      d(r, c) = static_cast<double>(w[k]) - static_cast<double>(approx[k]);
    }
}

Eigen::VectorXd row_output_errors(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                                  std::int64_t in, const Eigen::Ref<const Eigen::MatrixXd>& hessian) {
  constexpr std::int64_t kRowBlock = 256;
  Eigen::VectorXd errors(out);
  Eigen::MatrixXd d, dh;
  for (std::int64_t first = 0; first < out; first += kRowBlock) {
    const std::int64_t rows = std::min(kRowBlock, out - first);
    difference_rows(w, approx, first, rows, in, d);
    dh.noalias() = d * hessian;
    errors.segment(first, rows) = dh.cwiseProduct(d).rowwise().sum();
  }
  return errors;
}

Eigen::VectorXd exact_row_errors(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                                 std::int64_t in, const Eigen::Ref<const Eigen::MatrixXd>& hessian) {
  constexpr std::int64_t kRowBlock = 256;
  Eigen::VectorXd errors(out);
  const Eigen::VectorXd diagonal = hessian.diagonal();
  Eigen::MatrixXd d, dl;
  for (std::int64_t first = 0; first < out; first += kRowBlock) {
    const std::int64_t rows = std::min(kRowBlock, out - first);
    difference_rows(w, approx, first, rows, in, d);
    // (d L)_i = sum_{j>i} d_j H_ji with L the strictly lower triangle: H's symmetry gives the j<i half.
    dl.noalias() = d * hessian.triangularView<Eigen::StrictlyLower>();
    errors.segment(first, rows) = (2.0 * dl + d * diagonal.asDiagonal()).cwiseProduct(d).rowwise().sum();
  }
  return errors;
}

FloatRowErrors::FloatRowErrors(const Eigen::Map<const Eigen::MatrixXd>& hessian, std::int64_t in)
    : hessian_(hessian), in_(in) {
  // Blocks of at least 512 inputs keep each product a GEMM worth its overhead; small layers: one block.
  parts_ = in % 4 == 0 && in >= 2048 ? 4 : 1;
  part_ = in / parts_;
}

void FloatRowErrors::convert_block(std::int64_t i, std::int64_t j, kernels::Fp32Weights& b) const {
  // y = d_i W^T with W = H[j block, i block], so y = d_i H[i block, j block], dotted with d_j. H(j.., i..)
  // is read as H(i.., j..) (H is symmetric): down H's columns, in memory order.
  b.rows = part_;
  b.cols = part_;
  b.values.resize(static_cast<std::size_t>(part_ * part_));
  for (std::int64_t r = 0; r < part_; ++r)
    for (std::int64_t c = 0; c < part_; ++c)
      b.values[static_cast<std::size_t>(r * part_ + c)] =
          static_cast<float>(hessian_(i * part_ + c, j * part_ + r));
}

Eigen::VectorXd FloatRowErrors::operator()(std::span<const float> w, std::span<const float> approx,
                                           std::int64_t out) {
  constexpr std::int64_t kRowBlock = 256;
  Eigen::VectorXd errors(out);
  for (std::int64_t first = 0; first < out; first += kRowBlock) {
    const std::int64_t rows = std::min(kRowBlock, out - first);
    const auto count = static_cast<std::size_t>(rows * part_);
    // d split by input block, each [rows, part] contiguous as the kernel wants it
    d_.resize(static_cast<std::size_t>(parts_));
    for (std::int64_t p = 0; p < parts_; ++p) {
      d_[static_cast<std::size_t>(p)].resize(count);
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < part_; ++c) {
          const auto k = static_cast<std::size_t>((first + r) * in_ + p * part_ + c);
          d_[static_cast<std::size_t>(p)][static_cast<std::size_t>(r * part_ + c)] = w[k] - approx[k];
        }
    }
    errors.segment(first, rows).setZero();
    y_.resize(count);
    for (std::int64_t i = 0; i < parts_; ++i)
      for (std::int64_t j = i; j < parts_; ++j) {
        convert_block(i, j, block_);
        kernels::gemm(d_[static_cast<std::size_t>(i)], rows, block_, y_);
        const std::vector<float>& dj = d_[static_cast<std::size_t>(j)];
        const double weight = i == j ? 1.0 : 2.0;
        for (std::int64_t r = 0; r < rows; ++r) {
          double e = 0;
          for (std::int64_t c = 0; c < part_; ++c) {
            const auto k = static_cast<std::size_t>(r * part_ + c);
            e += static_cast<double>(dj[k]) * static_cast<double>(y_[k]);
          }
          errors(first + r) += weight * e;
        }
      }
  }
  return errors;
}

}  // namespace qk::detail
