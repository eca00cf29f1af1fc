// Internals shared by the weight methods: RTN of a linear layer slot by slot (with an optional
// importance-weighted clip search) and GPTQ. Private to src/ (uses Eigen); tests reach it through the
// source tree.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "quantkit/core/spec.hpp"
#include "quantkit/outlier/weight_methods.hpp"

namespace qk::detail {

// Clip search: for each slot, clip factors 1, ..., min_clip (grid steps) scale the min/max range; the one
// with the least error wins (ties: the wider range). The error is sum_j importance[j] (w_j - q_j)^2, or,
// with a Hessian of the values' own input, the slot's output error d H_ss d^T over the slot's diagonal
// block of H (AWQ's auto-clip, Lin et al. 2023). Neither set: plain min/max, no search.
struct ClipSearch {
  std::vector<double> importance;                              // per input channel
  const Eigen::Map<const Eigen::MatrixXd>* hessian = nullptr;  // in x in; takes precedence over importance
  int grid = 20;
  double min_clip = 0.5;
  // With a Hessian, for values W diag(s) (AWQ), whose input is x / s: hessian_scale = 1/s per input, and
  // the slot's error is (d / s) H (d / s)^T, scaled on the fly instead of forming diag(1/s) H diag(1/s)
  // (in x in doubles). Empty: no scaling.
  std::vector<double> hessian_scale;
  bool active() const { return hessian || !importance.empty(); }
};

// The scale and zero point of one slot's values under spec (rule 2 on the clipped min/max).
struct SlotGrid {
  float scale = 1;
  std::int32_t zero_point = 0;
};
SlotGrid slot_grid(std::span<const float> values, const QuantSpec& spec, double clip = 1.0);
std::int8_t quantize_to_grid(float w, const SlotGrid& g, QRange r);

// A layer's result with every code and value zero and no parameters yet (no values: `dequantized` empty).
QuantizedLinear empty_layer(std::int64_t out, std::int64_t in, const QuantSpec& spec,
                            bool with_values = true);

// Told each block of rows as it is quantized: rows [first, first + rows) and their dequantized values.
using RowBlockFn = std::function<void(std::int64_t first, std::int64_t rows, std::span<const float> values)>;

QuantizedLinear rtn_linear(std::span<const float> w, std::int64_t out, std::int64_t in, const QuantSpec& spec,
                           const ClipSearch& search);

// W diag(s), quantized by RTN (with the clip search), back to the layer's weights by diag(1/s): the codes,
// parameters, dequantized weights and input_scale of AWQ's and SmoothQuant's layers. Rows are
// independent: they go through 256 at a time, so the scaled copy of W never exists whole. s empty: plain
// RTN (rtn_linear's result, no input_scale). Each block's values go to `each` (when set), and into the
// result's `dequantized` only with keep_values.
QuantizedLinear scaled_rtn(std::span<const float> w, std::int64_t out, std::int64_t in,
                           std::span<const double> s, const QuantSpec& spec, const ClipSearch& search = {},
                           const RowBlockFn& each = {}, bool keep_values = true);

// options.progress (optional) gets the fraction of the columns done.
QuantizedLinear gptq_linear(std::span<const float> w, std::int64_t out, std::int64_t in,
                            Eigen::MatrixXd hessian, const QuantSpec& spec,
                            const WeightQuantOptions& options);

// AWQ (weight_methods.hpp) on the layer's Hessian h; the result carries its exact output error.
// options.progress (optional) gets the fraction of the work done, ending at 1.
QuantizedLinear awq_linear(std::span<const float> w, std::int64_t out, std::int64_t in,
                           std::span<const double> mean_abs, const Eigen::Map<const Eigen::MatrixXd>& h,
                           const QuantSpec& spec, const WeightQuantOptions& options);

}  // namespace qk::detail
