// Streaming activation statistics and the layer Hessian.
#include "quantkit/outlier/activation_stats.hpp"

#include <cmath>
#include <string>
#include <utility>

#include "quantkit/core/error.hpp"
#include "eigen_matrix.hpp"

namespace qk {

ActivationStats::ActivationStats(std::int64_t in_features, bool with_hessian)
    : in_(in_features), with_hessian_(with_hessian) {
  if (in_features <= 0) throw Error("activation statistics need a positive input width");
  const auto n = static_cast<std::size_t>(in_features);
  sum_abs_.assign(n, 0.0);
  max_abs_.assign(n, 0.0);
  sum_sq_.assign(n, 0.0);
  if (with_hessian_) xtx_.assign(n * n, 0.0);
}

void ActivationStats::add(std::span<const float> x, std::int64_t rows) {
  if (rows < 0 || static_cast<std::int64_t>(x.size()) != rows * in_) {
    throw Error("activations: " + std::to_string(x.size()) + " values do not form rows of " +
                std::to_string(in_) + " (the layer's input width)");
  }
  // Validate the whole batch first, so that a bad batch leaves the statistics untouched.
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      throw Error("activations: non-finite value at row " +
                  std::to_string(rows_ + static_cast<std::int64_t>(i) / in_) + ", column " +
                  std::to_string(static_cast<std::int64_t>(i) % in_));
    }
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < in_; ++c) {
      const float v = x[static_cast<std::size_t>(r * in_ + c)];
      const auto k = static_cast<std::size_t>(c);
      const double a = std::fabs(static_cast<double>(v));
      sum_abs_[k] += a;
      max_abs_[k] = std::max(max_abs_[k], a);
      sum_sq_[k] += a * a;
    }
  }
  if (with_hessian_ && rows > 0) {
    // Double accumulation: X^T X over millions of rows keeps its small eigenvalues, which GPTQ's
    // Cholesky needs.
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> m(
        x.data(), rows, in_);
    const Eigen::MatrixXd d = m.cast<double>();
    Eigen::Map<Eigen::MatrixXd>(xtx_.data(), in_, in_).selfadjointView<Eigen::Lower>().rankUpdate(d.transpose());
  }
  rows_ += rows;
}

void ActivationStats::merge(const ActivationStats& other) {
  if (other.in_ != in_ || other.with_hessian_ != with_hessian_)
    throw Error("activation statistics of different widths (or Hessian settings) cannot be merged");
  for (std::size_t k = 0; k < sum_abs_.size(); ++k) {
    sum_abs_[k] += other.sum_abs_[k];
    max_abs_[k] = std::max(max_abs_[k], other.max_abs_[k]);
    sum_sq_[k] += other.sum_sq_[k];
  }
  if (with_hessian_)
    for (std::size_t k = 0; k < xtx_.size(); ++k) xtx_[k] += other.xtx_[k];
  rows_ += other.rows_;
}

std::vector<double> ActivationStats::mean_abs() const {
  std::vector<double> m(sum_abs_.size());
  for (std::size_t k = 0; k < m.size(); ++k) m[k] = rows_ ? sum_abs_[k] / static_cast<double>(rows_) : 0.0;
  return m;
}

std::vector<double> ActivationStats::mean_square() const {
  std::vector<double> m(sum_sq_.size());
  for (std::size_t k = 0; k < m.size(); ++k) m[k] = rows_ ? sum_sq_[k] / static_cast<double>(rows_) : 0.0;
  return m;
}

namespace {

// X^T X (lower triangle up to date) -> H = 2 X^T X / n, in place.
SquareMatrix hessian_from(std::int64_t n, std::int64_t rows, std::vector<double> xtx) {
  SquareMatrix out{n, std::move(xtx)};
  Eigen::Map<Eigen::MatrixXd> h(out.values.data(), n, n);
  h.triangularView<Eigen::StrictlyUpper>() = h.transpose();
  h *= 2.0 / static_cast<double>(rows);
  return out;
}

}  // namespace

void ActivationStats::check_hessian() const {
  if (!with_hessian_) throw Error("activation statistics were gathered without the Hessian");
  if (rows_ == 0) throw Error("activation statistics: no calibration rows");
}

SquareMatrix ActivationStats::hessian() const {
  check_hessian();
  // Built in place from a copy of X^T X: an in x in temporary besides the result would raise the peak
  // memory of a 4096-wide layer by 128 MB.
  return hessian_from(in_, rows_, xtx_);
}

SquareMatrix ActivationStats::take_hessian() {
  check_hessian();
  with_hessian_ = false;
  return hessian_from(in_, rows_, std::move(xtx_));
}

}  // namespace qk
