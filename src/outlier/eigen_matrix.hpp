// Eigen views of the public SquareMatrix (private to src/: the installed headers never name Eigen).
#pragma once

#include <Eigen/Dense>

#include "quantkit/outlier/square_matrix.hpp"

namespace qk::detail {

inline Eigen::Map<const Eigen::MatrixXd> eigen_view(const SquareMatrix& m) {
  return {m.values.data(), static_cast<Eigen::Index>(m.n), static_cast<Eigen::Index>(m.n)};
}

inline SquareMatrix square_matrix(const Eigen::MatrixXd& m) {
  SquareMatrix out{static_cast<std::int64_t>(m.rows()), std::vector<double>(static_cast<std::size_t>(m.size()))};
  Eigen::Map<Eigen::MatrixXd>(out.values.data(), m.rows(), m.cols()) = m;
  return out;
}

}  // namespace qk::detail
