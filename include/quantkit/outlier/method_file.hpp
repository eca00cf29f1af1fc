// A linear layer's weight file quantized by an outlier-aware method (outlier/weight_methods.hpp) with
// calibration activations read from .npy files: WEIGHT.npy [out, in] + ACTS.npy... [..., in] -> the
// quantized-tensor .npz (io/qfile.hpp), plus `input_scale` for awq and smoothquant. float32 C-order
// activation files are memory-mapped and fed in batches of rows, so their size is not bounded by memory;
// other dtypes and orders are converted to float32 in memory first.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "quantkit/outlier/weight_methods.hpp"

namespace qk {

struct MethodFileReport {
  std::int64_t out = 0, in = 0;
  std::int64_t calibration_rows = 0;
  std::uint64_t output_bytes = 0;
  QuantizedLinear result;  // codes, parameters, dequantized weights, alpha, output error
  double weight_mse = 0;
  double rtn_output_error = 0;  // RTN's output error on the same statistics (0 without a Hessian)
};

// progress (optional) receives the fraction of activation rows read, 0..1. Writes atomically; nothing is
// written when anything fails (mismatched widths, NaN in activations, a singular Hessian, ...).
MethodFileReport quantize_file_with_method(const std::string& weights,
                                           const std::vector<std::string>& activations,
                                           const std::string& output, WeightMethod method,
                                           const WeightQuantOptions& options,
                                           const std::function<void(double)>& progress = {});

}  // namespace qk
