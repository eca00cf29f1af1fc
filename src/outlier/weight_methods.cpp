// rtn, importance-weighted scale search, AWQ and SmoothQuant; the method dispatch and the output error.
#include "quantkit/outlier/weight_methods.hpp"

#include <algorithm>
#include <cmath>

#include "eigen_matrix.hpp"
#include "quantkit/core/error.hpp"
#include "row_errors.hpp"
#include "weight_grid.hpp"

namespace qk {

const char* to_string(WeightMethod m) {
  switch (m) {
    case WeightMethod::kRtn:
      return "rtn";
    case WeightMethod::kImportance:
      return "importance";
    case WeightMethod::kAwq:
      return "awq";
    case WeightMethod::kGptq:
      return "gptq";
    case WeightMethod::kSmoothQuant:
      return "smoothquant";
  }
  return "?";
}

WeightMethod parse_weight_method(const std::string& name) {
  for (const WeightMethod m : {WeightMethod::kRtn, WeightMethod::kImportance, WeightMethod::kAwq,
                               WeightMethod::kGptq, WeightMethod::kSmoothQuant}) {
    if (name == to_string(m)) return m;
  }
  throw Error("unknown method '" + name + "' (rtn, importance, awq, gptq or smoothquant)");
}

QuantSpec weight_method_spec(const WeightQuantOptions& options, std::int64_t in) {
  QuantSpec spec;
  spec.bits = options.bits;
  spec.is_signed = true;
  spec.scheme = Scheme::kSymmetric;
  spec.scale_dtype = options.scale_dtype;
  spec.range_rule = options.range_rule;
  if (options.group_size > 0) {
    if (in % options.group_size != 0)
      throw Error("group size " + std::to_string(options.group_size) + " does not divide the layer's " +
                  std::to_string(in) + " inputs");
    spec.granularity = Granularity::kPerGroup;
    spec.group_size = options.group_size;
  } else {
    spec.granularity = Granularity::kPerChannel;
    spec.axis = 0;
  }
  spec.validate();
  return spec;
}

namespace {

double output_error_eigen(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                          std::int64_t in, const Eigen::Ref<const Eigen::MatrixXd>& hessian) {
  return detail::row_output_errors(w, approx, out, in, hessian).sum();
}

}  // namespace

double output_error(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                    std::int64_t in, const SquareMatrix& hessian) {
  if (hessian.n != in || static_cast<std::int64_t>(w.size()) != out * in || approx.size() != w.size())
    throw Error("output_error: weights, approximation and Hessian do not fit a " + std::to_string(out) +
                " x " + std::to_string(in) + " layer");
  return output_error_eigen(w, approx, out, in, detail::eigen_view(hessian));
}

OutputError compare_outputs(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                            std::int64_t in, const SquareMatrix& hessian_matrix, double signal) {
  if (static_cast<std::int64_t>(w.size()) != out * in || approx.size() != w.size() || hessian_matrix.n != in)
    throw Error("compare_outputs: weights, approximation and Hessian do not fit a " + std::to_string(out) +
                " x " + std::to_string(in) + " layer");
  const auto hessian = detail::eigen_view(hessian_matrix);
  if (signal < 0) signal = output_error_eigen(w, std::vector<float>(w.size(), 0.0f), out, in, hessian);
  signal = std::max(0.0, signal);                                                     // (2/n) ||X W^T||^2
  const double err = std::max(0.0, output_error_eigen(w, approx, out, in, hessian));  // (2/n) ||X D^T||^2
  OutputError e;
  e.mse = out > 0 ? err / (2.0 * static_cast<double>(out)) : 0.0;
  if (err == 0) {
    e.relative = 0;
    e.sqnr_db = INFINITY;
  } else if (signal == 0) {
    e.relative = INFINITY;
    e.sqnr_db = -INFINITY;
  } else {
    e.relative = err / signal;
    e.sqnr_db = -10.0 * std::log10(e.relative);
  }
  return e;
}

namespace {

void check_layer(std::span<const float> w, std::int64_t out, std::int64_t in, const ActivationStats* stats,
                 const SquareMatrix& hessian, WeightMethod method) {
  if (out <= 0 || in <= 0 || static_cast<std::int64_t>(w.size()) != out * in)
    throw Error("weights: " + std::to_string(w.size()) + " values for a " + std::to_string(out) + " x " +
                std::to_string(in) + " layer");
  for (std::size_t i = 0; i < w.size(); ++i)
    if (!std::isfinite(w[i])) throw Error("weights: non-finite value at index " + std::to_string(i));
  if (!hessian.empty() && (hessian.n != in || hessian.values.size() != static_cast<std::size_t>(in * in)))
    throw Error("the Hessian is " + std::to_string(hessian.n) + " x " + std::to_string(hessian.n) +
                ", the weight has " + std::to_string(in) + " inputs");
  if (method == WeightMethod::kRtn) return;
  if (!stats) throw Error(std::string(to_string(method)) + " needs calibration activations");
  if (stats->in_features() != in)
    throw Error("activations have " + std::to_string(stats->in_features()) + " columns, the weight has " +
                std::to_string(in) + " inputs");
  if (stats->rows() == 0) throw Error("activations: no calibration rows");
  if ((method == WeightMethod::kAwq || method == WeightMethod::kGptq) && hessian.empty())
    throw Error(std::string(to_string(method)) + " needs the activations' Hessian");
}

QuantizedLinear smoothquant(std::span<const float> w, std::int64_t out, std::int64_t in,
                            const ActivationStats& stats, const QuantSpec& spec,
                            const WeightQuantOptions& options) {
  const std::vector<double> act_max = stats.max_abs();
  std::vector<double> s(static_cast<std::size_t>(in), 1.0);
  for (std::int64_t c = 0; c < in; ++c) {
    double w_max = 0;
    for (std::int64_t r = 0; r < out; ++r)
      w_max = std::max(w_max, std::fabs(static_cast<double>(w[static_cast<std::size_t>(r * in + c)])));
    const double a = act_max[static_cast<std::size_t>(c)];
    if (a > 0 && w_max > 0)
      s[static_cast<std::size_t>(c)] = std::clamp(
          std::pow(a, options.smooth_alpha) / std::pow(w_max, 1 - options.smooth_alpha), 1e-5, 1e5);
  }
  QuantizedLinear q = detail::scaled_rtn(w, out, in, s, spec);
  q.alpha = options.smooth_alpha;
  return q;
}

}  // namespace

QuantizedLinear quantize_linear(std::span<const float> w, std::int64_t out, std::int64_t in,
                                const ActivationStats* stats, WeightMethod method,
                                const WeightQuantOptions& options) {
  // The Hessian is materialised once (in x in doubles), here, from a copy of the statistics' X^T X.
  const SquareMatrix hessian =
      stats && stats->has_hessian() && stats->rows() > 0 && stats->in_features() == in ? stats->hessian()
                                                                                       : SquareMatrix{};
  return quantize_linear(w, out, in, stats, hessian, method, options);
}

QuantizedLinear quantize_linear(std::span<const float> w, std::int64_t out, std::int64_t in,
                                const ActivationStats* stats, const SquareMatrix& hessian,
                                WeightMethod method, const WeightQuantOptions& options) {
  check_layer(w, out, in, stats, hessian, method);
  const QuantSpec spec = weight_method_spec(options, in);
  // AWQ's search, GPTQ and the output error share the Hessian through a view (GPTQ takes its own copy,
  // which it factorises in place).
  const bool with_hessian = !hessian.empty();
  const Eigen::Map<const Eigen::MatrixXd> h = detail::eigen_view(hessian);
  // GPTQ's columns take the first part of the progress, the output error the rest.
  constexpr double kGptqShare = 0.8;
  WeightQuantOptions inner = options;
  inner.progress = progress_part(options.progress, 0.0, kGptqShare);
  QuantizedLinear q;
  bool measured = false;  // weight_error and output_error filled while quantizing
  switch (method) {
    case WeightMethod::kRtn:
      if (options.keep_dequantized) {
        q = detail::rtn_linear(w, out, in, spec, {});
        break;
      }
      {
        // Rows are independent: 256 at a time, each block measured and dropped (the same sums as below).
        ErrorAccumulator weight_error;
        Eigen::VectorXd rows_error = Eigen::VectorXd::Zero(out);
        q = detail::scaled_rtn(
            w, out, in, {}, spec, {},
            [&](std::int64_t first, std::int64_t rows, std::span<const float> values) {
              const std::span<const float> w_rows =
                  w.subspan(static_cast<std::size_t>(first * in), static_cast<std::size_t>(rows * in));
              weight_error.add(w_rows, values);
              if (with_hessian)
                rows_error.segment(first, rows) = detail::row_output_errors(w_rows, values, rows, in, h);
            },
            false);
        q.weight_error = weight_error.result();
        if (with_hessian) q.output_error = rows_error.sum();
        measured = true;
      }
      break;
    case WeightMethod::kImportance: {
      std::vector<double> imp = stats->mean_square();
      // A channel that was never active still counts a little, so its weights are not thrown away.
      double mean = 0;
      for (const double v : imp) mean += v;
      mean /= static_cast<double>(imp.size());
      for (double& v : imp) v += 1e-6 * mean + 1e-30;
      detail::ClipSearch search{imp, nullptr, options.clip_grid, options.min_clip, {}};
      q = detail::rtn_linear(w, out, in, spec, search);
      break;
    }
    case WeightMethod::kAwq:  // its result carries both errors; it reports its own progress
      q = detail::awq_linear(w, out, in, stats->mean_abs(), h, spec, options);
      measured = true;
      break;
    case WeightMethod::kGptq:
      q = detail::gptq_linear(w, out, in, Eigen::MatrixXd(h), spec, inner);
      break;
    case WeightMethod::kSmoothQuant:
      q = smoothquant(w, out, in, *stats, spec, options);
      break;
  }
  if (!measured) {
    q.weight_error = compare(w, q.dequantized);
    if (with_hessian) q.output_error = output_error_eigen(w, q.dequantized, out, in, h);
  }
  if (!options.keep_dequantized) std::vector<float>().swap(q.dequantized);
  if (options.progress) options.progress(1.0);
  return q;
}

}  // namespace qk
