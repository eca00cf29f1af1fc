// Calibration statistics of a linear layer's input, y = W x (W: out x in), from activations X (n x in)
// fed in batches: per-input-channel mean |x|, max |x| and mean x^2, and the Hessian of the layer's output
// error, H = 2 X^T X / n, accumulated in double in constant memory (in x in). The outlier-aware weight
// methods (outlier/weight_methods.hpp) read everything they need from here.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "quantkit/outlier/square_matrix.hpp"

namespace qk {

class ActivationStats {
 public:
  explicit ActivationStats(std::int64_t in_features, bool with_hessian = true);

  // One batch, row-major [rows, in_features]. Throws (naming the row and column) on NaN/Inf and on a
  // width that does not match.
  void add(std::span<const float> x, std::int64_t rows);
  // Adds another accumulator's data (same width), as if its batches had been added here.
  void merge(const ActivationStats& other);

  std::int64_t in_features() const { return in_; }
  std::int64_t rows() const { return rows_; }
  bool has_hessian() const { return with_hessian_; }
  std::vector<double> mean_abs() const;
  std::vector<double> max_abs() const { return max_abs_; }
  std::vector<double> mean_square() const;  // llama.cpp's importance (imatrix) per input channel
  // H = 2 X^T X / n. Throws when no rows were added or the Hessian was not accumulated. hessian() copies
  // the accumulator (in x in doubles); take_hessian() forms H in the accumulator's own storage and hands
  // it over, with no copy: the statistics then have no Hessian (has_hessian() false), the per-channel
  // figures and rows stay. Both give the same values.
  SquareMatrix hessian() const;
  SquareMatrix take_hessian();

 private:
  void check_hessian() const;

  std::int64_t in_ = 0;
  bool with_hessian_ = true;
  std::int64_t rows_ = 0;
  std::vector<double> sum_abs_, max_abs_, sum_sq_;
  std::vector<double> xtx_;  // X^T X, summed (in x in; only the lower triangle is kept up to date)
};

}  // namespace qk
