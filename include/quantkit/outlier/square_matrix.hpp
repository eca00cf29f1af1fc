// A dense n x n matrix of doubles, row-major: how the outlier methods hand a layer's Hessian across the
// public API without exposing the linear-algebra library they use inside (Eigen stays private to src/).
#pragma once

#include <cstdint>
#include <vector>

namespace qk {

struct SquareMatrix {
  std::int64_t n = 0;
  std::vector<double> values;  // n * n, row-major; a Hessian is symmetric, so column-major reads the same

  double at(std::int64_t row, std::int64_t col) const { return values[static_cast<std::size_t>(row * n + col)]; }
  bool empty() const { return n == 0; }
};

}  // namespace qk
