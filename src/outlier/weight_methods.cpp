// rtn, importance-weighted scale search, AWQ and SmoothQuant; the method dispatch and the output error.
#include "quantkit/outlier/weight_methods.hpp"

#include <algorithm>
#include <cmath>

#include "quantkit/core/error.hpp"
#include "eigen_matrix.hpp"
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

// d_r H d_r^T for every row r of d = w - approx (one matrix product).
Eigen::VectorXd row_output_errors(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                                  std::int64_t in, const Eigen::Ref<const Eigen::MatrixXd>& hessian) {
  Eigen::MatrixXd d(out, in);
  for (std::int64_t r = 0; r < out; ++r)
    for (std::int64_t c = 0; c < in; ++c) {
      const auto k = static_cast<std::size_t>(r * in + c);
      d(r, c) = static_cast<double>(w[k]) - static_cast<double>(approx[k]);
    }
  return (d * hessian).cwiseProduct(d).rowwise().sum();
}

double output_error_eigen(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                          std::int64_t in, const Eigen::Ref<const Eigen::MatrixXd>& hessian) {
  return row_output_errors(w, approx, out, in, hessian).sum();
}

}  // namespace

double output_error(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                    std::int64_t in, const SquareMatrix& hessian) {
  if (hessian.n != in || static_cast<std::int64_t>(w.size()) != out * in || approx.size() != w.size())
    throw Error("output_error: weights, approximation and Hessian do not fit a " + std::to_string(out) + " x " +
                std::to_string(in) + " layer");
  return output_error_eigen(w, approx, out, in, detail::eigen_view(hessian));
}

OutputError compare_outputs(std::span<const float> w, std::span<const float> approx, std::int64_t out,
                            std::int64_t in, const SquareMatrix& hessian_matrix, double signal) {
  if (static_cast<std::int64_t>(w.size()) != out * in || approx.size() != w.size() || hessian_matrix.n != in)
    throw Error("compare_outputs: weights, approximation and Hessian do not fit a " + std::to_string(out) +
                " x " + std::to_string(in) + " layer");
  const auto hessian = detail::eigen_view(hessian_matrix);
  if (signal < 0) signal = output_error_eigen(w, std::vector<float>(w.size(), 0.0f), out, in, hessian);
  signal = std::max(0.0, signal);                                               // (2/n) ||X W^T||^2
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
                 WeightMethod method) {
  if (out <= 0 || in <= 0 || static_cast<std::int64_t>(w.size()) != out * in)
    throw Error("weights: " + std::to_string(w.size()) + " values for a " + std::to_string(out) + " x " +
                std::to_string(in) + " layer");
  for (std::size_t i = 0; i < w.size(); ++i)
    if (!std::isfinite(w[i])) throw Error("weights: non-finite value at index " + std::to_string(i));
  if (method == WeightMethod::kRtn) return;
  if (!stats) throw Error(std::string(to_string(method)) + " needs calibration activations");
  if (stats->in_features() != in)
    throw Error("activations have " + std::to_string(stats->in_features()) + " columns, the weight has " +
                std::to_string(in) + " inputs");
  if (stats->rows() == 0) throw Error("activations: no calibration rows");
  if ((method == WeightMethod::kAwq || method == WeightMethod::kGptq) && !stats->has_hessian())
    throw Error(std::string(to_string(method)) + " needs the activations' Hessian");
}

// W diag(s), quantized by RTN, back to the layer's weights by diag(1/s).
QuantizedLinear scaled_rtn(std::span<const float> w, std::int64_t out, std::int64_t in,
                           std::span<const double> s, const QuantSpec& spec,
                           const detail::ClipSearch& search = {}) {
  std::vector<float> scaled(w.size());
  std::vector<float> sf(s.size());
  for (std::size_t c = 0; c < s.size(); ++c) sf[c] = static_cast<float>(s[c]);
  for (std::int64_t r = 0; r < out; ++r)
    for (std::int64_t c = 0; c < in; ++c) {
      const auto k = static_cast<std::size_t>(r * in + c);
      scaled[k] = w[k] * sf[static_cast<std::size_t>(c)];
    }
  QuantizedLinear q = detail::rtn_linear(scaled, out, in, spec, search);
  for (std::int64_t r = 0; r < out; ++r)
    for (std::int64_t c = 0; c < in; ++c)
      q.dequantized[static_cast<std::size_t>(r * in + c)] /= sf[static_cast<std::size_t>(c)];
  q.input_scale = std::move(sf);
  return q;
}

QuantizedLinear awq(std::span<const float> w, std::int64_t out, std::int64_t in, const ActivationStats& stats,
                    const Eigen::MatrixXd& h, const QuantSpec& spec, const WeightQuantOptions& options) {
  const std::vector<double> mean_abs = stats.mean_abs();
  const int grid = std::max(1, options.alpha_grid);
  QuantizedLinear best;
  best.output_error = INFINITY;
  for (int g = 0; g <= grid; ++g) {
    const double alpha = static_cast<double>(g) / grid;
    // s = mean|x|^alpha, normalised so that its geometric mean is 1 (the grid of the other channels
    // stays put); a channel never active keeps s = 1.
    std::vector<double> s(static_cast<std::size_t>(in), 1.0);
    double log_sum = 0;
    int active = 0;
    for (std::size_t c = 0; c < s.size(); ++c) {
      if (mean_abs[c] > 0) {
        s[c] = std::pow(mean_abs[c], alpha);
        log_sum += std::log(s[c]);
        ++active;
      }
    }
    const double norm = active ? std::exp(log_sum / active) : 1.0;
    for (std::size_t c = 0; c < s.size(); ++c)
      if (mean_abs[c] > 0) s[c] = std::clamp(s[c] / norm, 1e-4, 1e4);
    QuantizedLinear q = scaled_rtn(w, out, in, s, spec);
    q.alpha = alpha;
    q.output_error = output_error_eigen(w, q.dequantized, out, in, h);
    if (q.output_error < best.output_error) best = std::move(q);  // strict: the smallest alpha wins ties
  }
  if (!std::isfinite(best.output_error))
    throw Error("awq: no alpha gave a finite output error (is the Hessian finite?)");
  if (!options.awq_clip) return best;
  // Auto-clip, AWQ's second step: with s fixed, each slot's range is shrunk (factors 1 .. min_clip) to
  // minimise that slot's own output error. The codes quantize W diag(s), whose input is X diag(1/s), so
  // the search uses H' = diag(1/s) H diag(1/s). A slot wider than kMaxBlock inputs (per channel on a wide
  // layer) would cost width^2 per trial: it uses H's diagonal instead (the importance of each input).
  constexpr std::int64_t kMaxBlock = 1024;
  const Eigen::VectorXd inv_s =
      Eigen::Map<const Eigen::VectorXf>(best.input_scale.data(), in).cast<double>().cwiseInverse();
  detail::ClipSearch search;
  search.grid = options.clip_grid;
  search.min_clip = options.min_clip;
  const std::int64_t width = spec.granularity == Granularity::kPerGroup ? spec.group_size : in;
  Eigen::MatrixXd h_scaled;
  if (width <= kMaxBlock) {
    h_scaled = inv_s.asDiagonal() * h * inv_s.asDiagonal();
    search.hessian = &h_scaled;
  } else {
    search.importance.resize(static_cast<std::size_t>(in));
    for (std::int64_t c = 0; c < in; ++c)
      search.importance[static_cast<std::size_t>(c)] = h(c, c) * inv_s(c) * inv_s(c) + 1e-30;
  }
  std::vector<double> s(best.input_scale.begin(), best.input_scale.end());
  QuantizedLinear clipped = scaled_rtn(w, out, in, s, spec, search);
  // Each slot's clip minimised the slot's own error; the groups of a row still interact through H's
  // off-diagonal blocks, so the clipped row can come out worse as a whole. Rows do not interact (the
  // output error is a sum over rows): keep, row by row, whichever of the clipped and unclipped is better.
  const std::int64_t slots_per_row = static_cast<std::int64_t>(best.params.scale.size()) / out;
  const Eigen::VectorXd clipped_rows = row_output_errors(w, clipped.dequantized, out, in, h);
  const Eigen::VectorXd plain_rows = row_output_errors(w, best.dequantized, out, in, h);
  for (std::int64_t r = 0; r < out; ++r) {
    if (!(clipped_rows(r) < plain_rows(r))) continue;
    const auto row = static_cast<std::ptrdiff_t>(r * in), n = static_cast<std::ptrdiff_t>(in);
    std::copy(clipped.codes.begin() + row, clipped.codes.begin() + row + n, best.codes.begin() + row);
    std::copy(clipped.dequantized.begin() + row, clipped.dequantized.begin() + row + n,
              best.dequantized.begin() + row);
    const auto first = static_cast<std::ptrdiff_t>(r * slots_per_row);
    std::copy(clipped.params.scale.begin() + first, clipped.params.scale.begin() + first + slots_per_row,
              best.params.scale.begin() + first);
    std::copy(clipped.params.zero_point.begin() + first,
              clipped.params.zero_point.begin() + first + slots_per_row,
              best.params.zero_point.begin() + first);
  }
  best.output_error = output_error_eigen(w, best.dequantized, out, in, h);
  return best;
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
  QuantizedLinear q = scaled_rtn(w, out, in, s, spec);
  q.alpha = options.smooth_alpha;
  return q;
}

}  // namespace

QuantizedLinear quantize_linear(std::span<const float> w, std::int64_t out, std::int64_t in,
                                const ActivationStats* stats, WeightMethod method,
                                const WeightQuantOptions& options) {
  check_layer(w, out, in, stats, method);
  const QuantSpec spec = weight_method_spec(options, in);
  // The Hessian is materialised once (in x in doubles): AWQ's search, GPTQ and the output error share it.
  const bool with_hessian = stats && stats->has_hessian();
  const Eigen::MatrixXd h = with_hessian ? Eigen::MatrixXd(detail::eigen_view(stats->hessian())) : Eigen::MatrixXd();
  QuantizedLinear q;
  switch (method) {
    case WeightMethod::kRtn:
      q = detail::rtn_linear(w, out, in, spec, {});
      break;
    case WeightMethod::kImportance: {
      std::vector<double> imp = stats->mean_square();
      // A channel that was never active still counts a little, so its weights are not thrown away.
      double mean = 0;
      for (const double v : imp) mean += v;
      mean /= static_cast<double>(imp.size());
      for (double& v : imp) v += 1e-6 * mean + 1e-30;
      detail::ClipSearch search{imp, nullptr, options.clip_grid, options.min_clip};
      q = detail::rtn_linear(w, out, in, spec, search);
      break;
    }
    case WeightMethod::kAwq:
      q = awq(w, out, in, *stats, h, spec, options);  // its result carries the output error
      break;
    case WeightMethod::kGptq:
      q = detail::gptq_linear(w, out, in, h, spec, options);
      break;
    case WeightMethod::kSmoothQuant:
      q = smoothquant(w, out, in, *stats, spec, options);
      break;
  }
  if (with_hessian && method != WeightMethod::kAwq)
    q.output_error = output_error_eigen(w, q.dequantized, out, in, h);
  return q;
}

}  // namespace qk
