// AWQ (Lin et al. 2023): the per-input-channel scale search on the layer's Hessian, then auto-clip.
#include <algorithm>
#include <cmath>
#include <utility>

#include "quantkit/core/error.hpp"
#include "row_errors.hpp"
#include "weight_grid.hpp"

namespace qk::detail {

namespace {

// AWQ's factor for one alpha: s = mean|x|^alpha, normalised so that its geometric mean is 1 (the grid of
// the other channels stays put); a channel never active keeps s = 1.
std::vector<double> awq_scales(std::span<const double> mean_abs, double alpha) {
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

// AWQ's progress, counted in rows scored: the grid's passes over the sample, the whole-layer rescoring,
// the clip pass, and the exact output error (counted as two: double, not float).
class RowsDone {
 public:
  RowsDone(ProgressFn fn, double total) : fn_(std::move(fn)), total_(std::max(total, 1.0)) {}
  void add(double rows) {
    done_ += rows;
    if (fn_) fn_(std::min(done_ / total_, 1.0));
  }
  void finish() {
    if (fn_) fn_(1.0);
  }

 private:
  ProgressFn fn_;
  double total_, done_ = 0;
};

// The float row errors of W's RTN under s, 256 rows at a time (the blocks scaled_rtn and FloatRowErrors
// use, so the values are those of a whole-layer pass), without a whole-layer candidate in memory.
Eigen::VectorXd candidate_row_errors(std::span<const float> w, std::int64_t out, std::int64_t in,
                                     std::span<const double> s, const QuantSpec& spec,
                                     FloatRowErrors& float_row_errors, RowsDone& progress) {
  constexpr std::int64_t kRowBlock = 256;
  Eigen::VectorXd errors(out);
  for (std::int64_t first = 0; first < out; first += kRowBlock) {
    const std::int64_t rows = std::min(kRowBlock, out - first);
    const std::span<const float> w_rows =
        w.subspan(static_cast<std::size_t>(first * in), static_cast<std::size_t>(rows * in));
    errors.segment(first, rows) =
        float_row_errors(w_rows, scaled_rtn(w_rows, rows, in, s, spec).dequantized, rows);
    progress.add(static_cast<double>(rows));
  }
  return errors;
}

}  // namespace

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
// - the whole-layer rescoring goes 256 rows at a time (RTN, then the float errors of those rows), so no
//   whole-layer candidate exists besides the result.
// Memory besides the layer and H (in x in doubles, formed by the caller): the result (codes and
// parameters, plus the dequantized weights only with options.keep_dequantized), one float block of H
// at a time (FloatRowErrors) and blocks of 256 rows.
QuantizedLinear awq_linear(std::span<const float> w, std::int64_t out, std::int64_t in,
                           std::span<const double> mean_abs, const Eigen::Map<const Eigen::MatrixXd>& h,
                           const QuantSpec& spec, const WeightQuantOptions& options) {
  const int grid = std::max(1, options.alpha_grid);
  const std::int64_t sample =
      options.awq_sample_rows <= 0 ? out : std::min<std::int64_t>(out, options.awq_sample_rows);
  const bool exhaustive = sample == out;
  constexpr std::size_t kFullScored = 4;
  const auto sample_rows = static_cast<double>(sample), layer_rows = static_cast<double>(out);
  const double rescored = std::min(static_cast<double>(kFullScored), grid + 1.0);
  RowsDone progress{options.progress, (grid + 1.0) * sample_rows +
                                          (exhaustive ? 0.0 : rescored * layer_rows) +
                                          (options.awq_clip ? layer_rows : 0.0) + 2.0 * layer_rows};
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
  struct Candidate {
    double alpha, error;
  };
  std::vector<Candidate> candidates;
  QuantizedLinear best;
  Eigen::VectorXd best_rows;  // float row errors of `best`, the clip step's baseline
  double best_error = INFINITY;
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
    progress.add(static_cast<double>(sample));
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
          candidate_row_errors(w, out, in, awq_scales(mean_abs, c.alpha), spec, float_row_errors, progress);
      const double error = rows.sum();
      if (error < best_error || (error == best_error && c.alpha < chosen)) {
        best_error = error;
        chosen = c.alpha;
        best_rows = std::move(rows);
      }
    }
    if (std::isfinite(best_error)) {
      best = scaled_rtn(w, out, in, awq_scales(mean_abs, chosen), spec, {}, {}, options.keep_dequantized);
      best.alpha = chosen;
    }
  }
  if (!std::isfinite(best_error))
    throw Error("awq: no alpha gave a finite output error (is the Hessian finite?)");
  // The clip search (below, when awq_clip is on), then both errors, 256 rows at a time. `best` holds its
  // whole-layer values only when the caller keeps them (or the layer was scored whole above); otherwise
  // each block's values are made again (RTN is row by row, so they are the same) and dropped after use.
  const bool values_kept = !best.dequantized.empty();
  ClipSearch search;
  search.grid = options.clip_grid;
  search.min_clip = options.min_clip;
  const std::vector<double> s(best.input_scale.begin(), best.input_scale.end());
  if (options.awq_clip) {
    // Auto-clip, AWQ's second step: with s fixed, each slot's range is shrunk (factors 1 .. min_clip) to
    // minimise that slot's own output error. The codes quantize W diag(s), whose input is X diag(1/s), so
    // the search uses H' = diag(1/s) H diag(1/s) (folded into each slot block). A slot wider than
    // kMaxBlock inputs (per channel on a wide layer) would cost width^2 per trial: it uses H's diagonal
    // instead (the importance of each input).
    constexpr std::int64_t kMaxBlock = 1024;
    const std::int64_t width = spec.granularity == Granularity::kPerGroup ? spec.group_size : in;
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
  }
  // Each slot's clip minimised the slot's own error; the groups of a row still interact through H's
  // off-diagonal blocks, so the clipped row can come out worse as a whole. Rows do not interact (the
  // output error is a sum over rows): keep, row by row, whichever of the clipped and unclipped is better.
  // Done kRowBlock rows at a time, so the clipped candidate never exists for the whole layer; 128 rows
  // keep this pass's temporaries (the block's candidates, the double differences of exact_row_errors)
  // under the alpha search's, and gave the same file, byte for byte, as 256 on a 4096 x 4096 layer.
  constexpr std::int64_t kRowBlock = 128;
  const std::int64_t slots_per_row = static_cast<std::int64_t>(best.params.scale.size()) / out;
  Eigen::VectorXd exact_rows(out);
  ErrorAccumulator weight_error;
  std::vector<float> values;
  for (std::int64_t first = 0; first < out; first += kRowBlock) {
    const std::int64_t rows = std::min(kRowBlock, out - first);
    const auto base = static_cast<std::size_t>(first * in), count = static_cast<std::size_t>(rows * in);
    const std::span<const float> w_rows = w.subspan(base, count);
    if (values_kept) {
      values.assign(best.dequantized.begin() + static_cast<std::ptrdiff_t>(base),
                    best.dequantized.begin() + static_cast<std::ptrdiff_t>(base + count));
    } else {
      values = scaled_rtn(w_rows, rows, in, s, spec).dequantized;
    }
    if (options.awq_clip) {
      const QuantizedLinear clipped = scaled_rtn(w_rows, rows, in, s, spec, search);
      const Eigen::VectorXd clipped_rows = float_row_errors(w_rows, clipped.dequantized, rows);
      const Eigen::VectorXd plain_rows = best_rows.segment(first, rows);
      for (std::int64_t r = 0; r < rows; ++r) {
        if (!(clipped_rows(r) < plain_rows(r))) continue;
        const auto row = static_cast<std::ptrdiff_t>(r * in), n = static_cast<std::ptrdiff_t>(in);
        const auto at = static_cast<std::ptrdiff_t>(base) + row;
        std::copy(clipped.codes.begin() + row, clipped.codes.begin() + row + n, best.codes.begin() + at);
        std::copy(clipped.dequantized.begin() + row, clipped.dequantized.begin() + row + n,
                  values.begin() + row);
        const auto from = static_cast<std::ptrdiff_t>(r * slots_per_row);
        const auto to = static_cast<std::ptrdiff_t>((first + r) * slots_per_row);
        std::copy(clipped.params.scale.begin() + from, clipped.params.scale.begin() + from + slots_per_row,
                  best.params.scale.begin() + to);
        std::copy(clipped.params.zero_point.begin() + from,
                  clipped.params.zero_point.begin() + from + slots_per_row,
                  best.params.zero_point.begin() + to);
      }
      if (values_kept)
        std::copy(values.begin(), values.end(), best.dequantized.begin() + static_cast<std::ptrdiff_t>(base));
      progress.add(static_cast<double>(rows));
    }
    exact_rows.segment(first, rows) = exact_row_errors(w_rows, values, rows, in, h);
    weight_error.add(w_rows, values);
  }
  best.output_error = exact_rows.sum();
  best.weight_error = weight_error.result();
  if (!options.keep_dequantized) std::vector<float>().swap(best.dequantized);
  progress.finish();
  return best;
}

}  // namespace qk::detail
