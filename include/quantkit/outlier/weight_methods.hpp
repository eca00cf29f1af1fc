// Outlier-aware weight quantization of a linear layer W (out x in, row-major) with calibration statistics
// of its input (outlier/activation_stats.hpp). Each method returns codes and parameters in the
// foundation's format (per output channel, or per group of `group_size` consecutive inputs), the
// dequantized weights, and, for AWQ and SmoothQuant, the per-input-channel factor s that the codes were
// made for: the codes quantize W diag(s), so the layer computes (Q diag(1/s)) x, or Q (x / s).
//
// - rtn: round to nearest with min/max scales (the baseline; golden rules 2 and 5).
// - importance: RTN whose per-channel / per-group scale is searched (a grid of clip factors) to minimise
//   sum_j imp_j (w_j - q_j)^2 with imp_j = mean x_j^2 (llama.cpp's imatrix idea).
// - awq: s = mean|x|^alpha (normalised to geometric mean 1) with alpha on a grid in [0, 1], chosen to
//   minimise the output error ||X W^T - X What^T||^2 = (n/2) sum_rows d H d^T, scored on up to
//   awq_sample_rows evenly strided rows (all rows of a smaller layer); the smallest alpha wins ties.
//   Then, as the AWQ reference does (auto_clip), each slot's clip factor is searched on the slot's
//   block of the Hessian (awq_clip); a row keeps its clipped slots only if its output error drops.
// - gptq: column by column with error compensation through the Cholesky factor of the dampened inverse
//   Hessian (Frantar et al. 2022), lazy batches of `block_size` columns, optional act-order (static
//   groups: group parameters come from the weights before any update when act-order is on). Input
//   channels the calibration data never activated keep their weights (quantized as RTN would; the
//   reference implementation zeroes them).
// - smoothquant: s = max|x|^alpha / max|w|^(1-alpha) per input channel, folded into the weights (W8A8).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quantkit/core/progress.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/outlier/activation_stats.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qk {

enum class WeightMethod { kRtn, kImportance, kAwq, kGptq, kSmoothQuant };
const char* to_string(WeightMethod m);
WeightMethod parse_weight_method(const std::string& name);  // rtn|importance|awq|gptq|smoothquant

struct WeightQuantOptions {
  int bits = 4;                 // 2..8, signed symmetric codes
  std::int64_t group_size = 0;  // 0: per output channel; else groups of consecutive inputs (divides in)
  // gptq
  double damp = 0.01;  // dampening: this fraction of the mean Hessian diagonal is added to the diagonal
  std::int64_t block_size = 128;
  bool act_order = false;
  // awq / smoothquant
  int alpha_grid = 20;        // awq: alpha in {0, 1/grid, ..., 1}
  bool awq_clip = true;       // awq: then search each slot's clip factor (clip_grid, min_clip) on H
  // awq: output rows (evenly strided) that score each alpha; 0 or more than the layer has: all rows.
  // The chosen alpha then quantizes the whole layer, and output_error is the whole layer's.
  std::int64_t awq_sample_rows = 256;
  double smooth_alpha = 0.5;  // smoothquant's migration strength
  // importance and awq's clip: clip factors searched, from 1 down to min_clip
  int clip_grid = 20;
  double min_clip = 0.5;
  // How scales are stored and which symmetric range rule the codes use (core/spec.hpp).
  ScaleDType scale_dtype = ScaleDType::kFloat32;
  RangeRule range_rule = RangeRule::kPyTorch;
  // false: the result's `dequantized` is left empty and rtn and awq never hold the whole layer's
  // dequantized weights (out x in floats) at once: they go 256 rows at a time into weight_error and
  // output_error, which come out the same either way. The file functions use it (a 4096 x 4096 layer:
  // 64 MiB less at the peak).
  bool keep_dequantized = true;
  // Called (when set) with the fraction of quantize_linear's work done, 0..1, nondecreasing, ending at 1:
  // per block of columns for gptq, per alpha, row block and pass for awq; the other methods report 1 at
  // the end.
  ProgressFn progress;
};

struct QuantizedLinear {
  std::int64_t out = 0, in = 0;
  QuantParams params;              // spec: per channel (axis 0) or per group along the input axis
  std::vector<std::int8_t> codes;  // [out, in], codes of W diag(s)
  std::vector<float> dequantized;  // [out, in], what the layer's weights become (divided by s); empty
                                   // when options.keep_dequantized is false
  ErrorStats weight_error;         // W against what it becomes (MSE, max error, SQNR)
  std::vector<float> input_scale;  // s per input channel (awq, smoothquant); empty otherwise
  double alpha = 0;                // awq / smoothquant: the exponent used
  double output_error = 0;         // sum over rows of d H d^T, d = W - dequantized (0 without a Hessian)
};

// The spec of a layer quantized with these options (per channel or per group, signed symmetric).
QuantSpec weight_method_spec(const WeightQuantOptions& options, std::int64_t in);

// W: [out, in] row-major. stats must match `in`; rtn ignores it, importance and smoothquant need no
// Hessian, awq and gptq do. Throws naming the layer size and the problem (mismatched widths, NaN weights,
// a Hessian that stays singular after dampening).
// The Hessian is formed here from a copy of the statistics' accumulator (ActivationStats::hessian()).
QuantizedLinear quantize_linear(std::span<const float> w, std::int64_t out, std::int64_t in,
                                const ActivationStats* stats, WeightMethod method,
                                const WeightQuantOptions& options = {});
// The same with the layer's Hessian formed by the caller: one Hessian serves several calls, and
// stats->take_hessian() forms it with no copy (in x in doubles less at the peak). `hessian` is used
// wherever H is needed (awq, gptq, the output error; empty: none), `stats` for the per-channel figures.
QuantizedLinear quantize_linear(std::span<const float> w, std::int64_t out, std::int64_t in,
                                const ActivationStats* stats, const SquareMatrix& hessian,
                                WeightMethod method, const WeightQuantOptions& options = {});

// The output error sum over rows of d H d^T for approximate weights (d = w - approx).
double output_error(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                    std::int64_t in, const SquareMatrix& hessian);

// The layer's output error on the calibration set X (n rows) behind H = 2 X^T X / n, in plain terms:
// mse = ||X W^T - X What^T||^2 / (n out), relative = that over ||X W^T||^2, sqnr_db = -10 log10(relative).
// No error: relative 0, SQNR +inf. An error on outputs that are all zero: relative +inf, SQNR -inf.
struct OutputError {
  double mse = 0;
  double relative = 0;
  double sqnr_db = 0;
};
// `signal` is ||X W^T||^2 in the same units (output_error of W against zero weights); negative: computed
// here. Callers comparing many approximations of one W pass it once.
OutputError compare_outputs(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                            std::int64_t in, const SquareMatrix& hessian, double signal = -1);

}  // namespace qk
