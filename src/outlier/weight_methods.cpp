// rtn, importance-weighted scale search, AWQ and SmoothQuant; the method dispatch and the output error.
#include "quantkit/outlier/weight_methods.hpp"

#include <algorithm>
#include <cmath>

#include "eigen_matrix.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/kernels/gemm.hpp"
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

// Rows [first, first + rows) of d = w - approx, in double.
void difference_rows(std::span<const float> w, std::span<const float> approx, std::int64_t first,
                     std::int64_t rows, std::int64_t in, Eigen::MatrixXd& d) {
  d.resize(rows, in);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < in; ++c) {
      const auto k = static_cast<std::size_t>((first + r) * in + c);
      d(r, c) = static_cast<double>(w[k]) - static_cast<double>(approx[k]);
    }
}

// d_r H d_r^T for every row r of d = w - approx, kRowBlock rows per matrix product: the speed of a GEMM,
// with temporaries of 2 x kRowBlock x in doubles instead of 2 x out x in (four times a float layer).
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

// d_r H d_r^T for every row of d = w - approx, exactly (double), at half a GEMM's cost: H is symmetric,
// so d H d^T = sum_i d_i (H_ii d_i + 2 sum_{j<i} H_ij d_j), a triangular product.
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

// Row errors d_r H d_r^T in float on the library's FP32 GEMM (AVX2+FMA where the CPU has it: about four
// times Eigen's double product in this baseline build), summed in double. Only for choices (alpha, a
// row's clip): a relative error near 1e-6 can only swap candidates that are tied to that precision.
// H is symmetric, so with its inputs cut into `parts` blocks only the blocks on and above the diagonal
// are multiplied (the ones above count twice): (parts + 1) / (2 parts) of a full product, 62% at 4.
class FloatRowErrors {
 public:
  FloatRowErrors(const Eigen::Ref<const Eigen::MatrixXd>& hessian, std::int64_t in) : in_(in) {
    // Blocks of at least 512 inputs keep each product a GEMM worth its overhead; small layers: one block.
    parts_ = in % 4 == 0 && in >= 2048 ? 4 : 1;
    part_ = in / parts_;
    for (std::int64_t i = 0; i < parts_; ++i)
      for (std::int64_t j = i; j < parts_; ++j) {
        // y = d_i W^T with W = H[j block, i block], so y = d_i H[i block, j block], dotted with d_j.
        kernels::Fp32Weights b{part_, part_,
                               kernels::AlignedVector<float>(static_cast<std::size_t>(part_ * part_))};
        for (std::int64_t r = 0; r < part_; ++r)
          for (std::int64_t c = 0; c < part_; ++c)
            b.values[static_cast<std::size_t>(r * part_ + c)] =
                static_cast<float>(hessian(j * part_ + r, i * part_ + c));
        blocks_.push_back(std::move(b));
      }
  }

  Eigen::VectorXd operator()(std::span<const float> w, std::span<const float> approx, std::int64_t out) {
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
      std::size_t b = 0;
      for (std::int64_t i = 0; i < parts_; ++i)
        for (std::int64_t j = i; j < parts_; ++j, ++b) {
          kernels::gemm(d_[static_cast<std::size_t>(i)], rows, blocks_[b], y_);
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

 private:
  std::int64_t in_, parts_ = 1, part_ = 0;
  std::vector<kernels::Fp32Weights> blocks_;  // (i, j), i <= j, row by row
  std::vector<std::vector<float>> d_;
  std::vector<float> y_;
};

// W diag(s), quantized by RTN, back to the layer's weights by diag(1/s). Rows are independent: they go
// through kRowBlock at a time, so the scaled copy of W never exists whole (64 MB at 4096 x 4096).
QuantizedLinear scaled_rtn(std::span<const float> w, std::int64_t out, std::int64_t in,
                           std::span<const double> s, const QuantSpec& spec,
                           const detail::ClipSearch& search = {}) {
  constexpr std::int64_t kRowBlock = 256;
  std::vector<float> sf(s.size());
  for (std::size_t c = 0; c < s.size(); ++c) sf[c] = static_cast<float>(s[c]);
  QuantizedLinear q;
  q.out = out;
  q.in = in;
  q.params.spec = spec;
  q.codes.resize(w.size());
  q.dequantized.resize(w.size());
  std::vector<float> scaled;
  for (std::int64_t first = 0; first < out; first += kRowBlock) {
    const std::int64_t rows = std::min(kRowBlock, out - first);
    const auto base = static_cast<std::size_t>(first * in);
    scaled.resize(static_cast<std::size_t>(rows * in));
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < in; ++c) {
        const auto k = static_cast<std::size_t>(r * in + c);
        scaled[k] = w[base + k] * sf[static_cast<std::size_t>(c)];
      }
    const QuantizedLinear part = detail::rtn_linear(scaled, rows, in, spec, search);
    std::copy(part.codes.begin(), part.codes.end(), q.codes.begin() + static_cast<std::ptrdiff_t>(base));
    for (std::size_t k = 0; k < part.dequantized.size(); ++k)
      q.dequantized[base + k] = part.dequantized[k] / sf[k % static_cast<std::size_t>(in)];
    q.params.scale.insert(q.params.scale.end(), part.params.scale.begin(), part.params.scale.end());
    q.params.zero_point.insert(q.params.zero_point.end(), part.params.zero_point.begin(),
                               part.params.zero_point.end());
  }
  q.input_scale = std::move(sf);
  return q;
}

// AWQ's factor for one alpha: s = mean|x|^alpha, normalised so that its geometric mean is 1 (the grid of
// the other channels stays put); a channel never active keeps s = 1.
std::vector<double> awq_scales(const std::vector<double>& mean_abs, double alpha) {
  std::vector<double> s(mean_abs.size(), 1.0);
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
  return s;
}

// What is evaluated on what (times: 4096 x 4096, 1024 calibration rows, 4-bit g128, one 2.6 GHz EPYC
// core; 199 s before this scheme, 14.6 s with it, GPTQ 16.3 s in the same run):
// - alpha: every grid point is scored on awq_sample_rows output rows (default 256, evenly strided), by
//   sum_r d_r H d_r^T on those rows only: grid x sample x in^2 work instead of grid x out x in^2 (16x less
//   at 4096 rows). Safe because alpha is one scalar for the whole layer and every row sees the same s, so
//   a few hundred rows rank the alphas as the layer does (AutoAWQ scores its grid on a subsample too, of
//   tokens). The 4 best on the sample are then scored on the whole layer (one RTN and one pass each) and
//   the best of those is kept, which catches the sample's near-misses between close alphas. A layer no
//   taller than the sample is scored on all its rows in one round, as before; awq_sample_rows = 0 forces
//   that exhaustive search on any layer (the tests compare the two).
// - Scores that only choose (alpha, a slot's clip, a row's clipped or plain slots) are computed in float
//   on the library's FP32 GEMM, sums in double (FloatRowErrors); the output_error reported is exact, in
//   double, over the whole layer (exact_row_errors).
// - auto-clip: each slot's clip factor is searched on the slot's diagonal block of H scaled by 1/s, folded
//   into a float block per slot column (no scaled in x in copy of H); then, 256 rows at a time, each row
//   keeps its clipped or plain slots, whichever has the smaller error.
// Memory besides the layer and the statistics: H (in x in doubles, once), H in float (about 5/8 of an
// in x in float matrix), the result, one full-layer candidate at a time and blocks of 256 rows.
QuantizedLinear awq(std::span<const float> w, std::int64_t out, std::int64_t in, const ActivationStats& stats,
                    const Eigen::Map<const Eigen::MatrixXd>& h, const QuantSpec& spec,
                    const WeightQuantOptions& options) {
  const std::vector<double> mean_abs = stats.mean_abs();
  const int grid = std::max(1, options.alpha_grid);
  const std::int64_t sample =
      options.awq_sample_rows <= 0 ? out : std::min<std::int64_t>(out, options.awq_sample_rows);
  std::vector<float> sampled;
  std::span<const float> w_sample = w;
  if (sample < out) {
    sampled.resize(static_cast<std::size_t>(sample * in));
    for (std::int64_t i = 0; i < sample; ++i) {
      const std::int64_t r = i * out / sample;  // evenly strided, first row included
      std::copy(w.begin() + static_cast<std::ptrdiff_t>(r * in),
                w.begin() + static_cast<std::ptrdiff_t>((r + 1) * in),
                sampled.begin() + static_cast<std::ptrdiff_t>(i * in));
    }
    w_sample = sampled;
  }
  FloatRowErrors float_row_errors(h, in);
  // Each alpha's error on the sample, then the best kFullScored of them on the whole layer (one RTN and
  // one float pass each; the winner's row errors serve the clip step below, so only the runners-up cost
  // extra). On a layer no taller than the sample, the sample is the layer: no second round.
  constexpr std::size_t kFullScored = 4;
  struct Candidate {
    double alpha, error;
  };
  std::vector<Candidate> candidates;
  QuantizedLinear best;
  Eigen::VectorXd best_rows;  // float row errors of `best`, the clip step's baseline
  double best_error = INFINITY;
  const bool exhaustive = sample == out;
  for (int g = 0; g <= grid; ++g) {
    const double alpha = static_cast<double>(g) / grid;
    const std::vector<double> s = awq_scales(mean_abs, alpha);
    QuantizedLinear q = scaled_rtn(w_sample, sample, in, s, spec);
    Eigen::VectorXd rows = float_row_errors(w_sample, q.dequantized, sample);
    const double error = rows.sum();
    candidates.push_back({alpha, error});
    if (exhaustive && error < best_error) {  // strict: the smallest alpha wins ties
      best_error = error;
      best = std::move(q);
      best.alpha = alpha;
      best_rows = std::move(rows);
    }
  }
  sampled = {};
  if (!exhaustive) {
    // stable: among equal sample errors the smaller alpha comes first
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Candidate& a, const Candidate& b) { return a.error < b.error; });
    double chosen = 0;
    for (std::size_t i = 0; i < std::min(candidates.size(), kFullScored); ++i) {
      const Candidate& c = candidates[i];
      if (!std::isfinite(c.error)) continue;
      // Only the row errors are kept: one full-layer candidate in memory at a time, the winner redone.
      Eigen::VectorXd rows =
          float_row_errors(w, scaled_rtn(w, out, in, awq_scales(mean_abs, c.alpha), spec).dequantized, out);
      const double error = rows.sum();
      if (error < best_error || (error == best_error && c.alpha < chosen)) {
        best_error = error;
        chosen = c.alpha;
        best_rows = std::move(rows);
      }
    }
    if (std::isfinite(best_error)) {
      best = scaled_rtn(w, out, in, awq_scales(mean_abs, chosen), spec);
      best.alpha = chosen;
    }
  }
  if (!std::isfinite(best_error))
    throw Error("awq: no alpha gave a finite output error (is the Hessian finite?)");
  if (!options.awq_clip) {
    best.output_error = exact_row_errors(w, best.dequantized, out, in, h).sum();
    return best;
  }
  // Auto-clip, AWQ's second step: with s fixed, each slot's range is shrunk (factors 1 .. min_clip) to
  // minimise that slot's own output error. The codes quantize W diag(s), whose input is X diag(1/s), so
  // the search uses H' = diag(1/s) H diag(1/s) (folded into each slot block). A slot wider than kMaxBlock
  // inputs (per channel on a wide layer) would cost width^2 per trial: it uses H's diagonal instead (the
  // importance of each input).
  constexpr std::int64_t kMaxBlock = 1024;
  detail::ClipSearch search;
  search.grid = options.clip_grid;
  search.min_clip = options.min_clip;
  const std::int64_t width = spec.granularity == Granularity::kPerGroup ? spec.group_size : in;
  const std::vector<double> s(best.input_scale.begin(), best.input_scale.end());
  std::vector<double> inv_s(static_cast<std::size_t>(in));
  for (std::size_t c = 0; c < inv_s.size(); ++c) inv_s[c] = 1.0 / s[c];
  if (width <= kMaxBlock) {
    search.hessian = &h;
    search.hessian_scale = std::move(inv_s);
  } else {
    search.importance.resize(static_cast<std::size_t>(in));
    for (std::int64_t c = 0; c < in; ++c) {
      const double is = inv_s[static_cast<std::size_t>(c)];
      search.importance[static_cast<std::size_t>(c)] = h(c, c) * is * is + 1e-30;
    }
  }
  // Each slot's clip minimised the slot's own error; the groups of a row still interact through H's
  // off-diagonal blocks, so the clipped row can come out worse as a whole. Rows do not interact (the
  // output error is a sum over rows): keep, row by row, whichever of the clipped and unclipped is better.
  // Done kRowBlock rows at a time, so the clipped candidate never exists for the whole layer.
  constexpr std::int64_t kRowBlock = 256;
  const std::int64_t slots_per_row = static_cast<std::int64_t>(best.params.scale.size()) / out;
  for (std::int64_t first = 0; first < out; first += kRowBlock) {
    const std::int64_t rows = std::min(kRowBlock, out - first);
    const auto base = static_cast<std::size_t>(first * in), count = static_cast<std::size_t>(rows * in);
    const std::span<const float> w_rows = w.subspan(base, count);
    const QuantizedLinear clipped = scaled_rtn(w_rows, rows, in, s, spec, search);
    const Eigen::VectorXd clipped_rows = float_row_errors(w_rows, clipped.dequantized, rows);
    const Eigen::VectorXd plain_rows = best_rows.segment(first, rows);
    for (std::int64_t r = 0; r < rows; ++r) {
      if (!(clipped_rows(r) < plain_rows(r))) continue;
      const auto row = static_cast<std::ptrdiff_t>(r * in), n = static_cast<std::ptrdiff_t>(in);
      const auto at = static_cast<std::ptrdiff_t>(base) + row;
      std::copy(clipped.codes.begin() + row, clipped.codes.begin() + row + n, best.codes.begin() + at);
      std::copy(clipped.dequantized.begin() + row, clipped.dequantized.begin() + row + n,
                best.dequantized.begin() + at);
      const auto from = static_cast<std::ptrdiff_t>(r * slots_per_row);
      const auto to = static_cast<std::ptrdiff_t>((first + r) * slots_per_row);
      std::copy(clipped.params.scale.begin() + from, clipped.params.scale.begin() + from + slots_per_row,
                best.params.scale.begin() + to);
      std::copy(clipped.params.zero_point.begin() + from,
                clipped.params.zero_point.begin() + from + slots_per_row,
                best.params.zero_point.begin() + to);
    }
  }
  best.output_error = exact_row_errors(w, best.dequantized, out, in, h).sum();
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
  // The Hessian is materialised once (in x in doubles): AWQ's search, GPTQ and the output error share it
  // through a view (GPTQ takes its own copy, which it factorises in place).
  const bool with_hessian = stats && stats->has_hessian();
  const SquareMatrix hessian = with_hessian ? stats->hessian() : SquareMatrix{};
  const Eigen::Map<const Eigen::MatrixXd> h = detail::eigen_view(hessian);
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
      detail::ClipSearch search{imp, nullptr, options.clip_grid, options.min_clip, {}};
      q = detail::rtn_linear(w, out, in, spec, search);
      break;
    }
    case WeightMethod::kAwq:
      q = awq(w, out, in, *stats, h, spec, options);  // its result carries the output error
      break;
    case WeightMethod::kGptq:
      q = detail::gptq_linear(w, out, in, Eigen::MatrixXd(h), spec, options);
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
