// Percentile, entropy and mse clip ranges over the canonical histogram.
#include "quantkit/observe/clip_search.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "quantkit/core/error.hpp"

namespace qk {

namespace {

void require_data(const Histogram& h) {
  if (h.empty()) throw Error("calibration histogram is empty");
}

float min_neg(const Histogram& h) { return std::min(h.min(), 0.0f); }
float max_pos(const Histogram& h) { return std::max(h.max(), 0.0f); }

// [-t, t] cut to the observed range widened to 0.
ClipRange symmetric_clip(const Histogram& h, double t) {
  const double lo = std::max(static_cast<double>(min_neg(h)), -t);
  const double hi = std::min(static_cast<double>(max_pos(h)), t);
  return {static_cast<float>(lo), static_cast<float>(hi)};
}

// One non-empty bin, cut to the observed range: values spread uniformly over [a, b] (a point when a == b).
struct Mass {
  double a, b, count;
};

std::vector<Mass> masses(const Histogram& h) {
  std::vector<Mass> out;
  const auto counts = h.counts();
  for (std::size_t j = 0; j < counts.size(); ++j) {
    if (counts[j] == 0) continue;
    const double a = std::max(h.edge(static_cast<std::int64_t>(j)), static_cast<double>(h.min()));
    const double b = std::min(h.edge(static_cast<std::int64_t>(j) + 1), static_cast<double>(h.max()));
    out.push_back({a, std::max(a, b), static_cast<double>(counts[j])});
  }
  return out;
}

double cube(double v) { return v * v * v; }

// The integral of (u - rint(u))^2 from -1/2 to u: n whole cells of 1/12 each plus the partial one.
double rounding_integral(double u) {
  const double n = std::floor(u + 0.5);
  const double r = u - n;
  return n / 12.0 + (cube(r) + 0.125) / 3.0;
}

// In units of the step (u = x / scale), the grid points are m in [lo, hi] (codes minus the zero point).
// Returns the integral of (u - m(u))^2 over [ua, ub], m(u) = clamp(rint(u), lo, hi).
double error_integral(double ua, double ub, double lo, double hi) {
  double sum = 0.0;
  const double below_end = std::min(ub, lo + 0.5);
  if (ua < below_end) sum += (cube(below_end - lo) - cube(ua - lo)) / 3.0;
  const double above_start = std::max(ua, hi - 0.5);
  if (above_start < ub) sum += (cube(ub - hi) - cube(above_start - hi)) / 3.0;
  const double m1 = std::max(ua, lo + 0.5);
  const double m2 = std::min(ub, hi - 0.5);
  if (m1 < m2) sum += rounding_integral(m2) - rounding_integral(m1);
  return sum;
}

double point_error(double u, double lo, double hi) {
  const double m = std::clamp(std::nearbyint(u), lo, hi);
  return (u - m) * (u - m);
}

double expected_error(const std::vector<Mass>& ms, double total, const QParams& p, QRange r) {
  const double s = p.scale;
  const double lo = static_cast<double>(r.min - p.zero_point);
  const double hi = static_cast<double>(r.max - p.zero_point);
  double sum = 0.0;
  for (const Mass& m : ms) {
    const double ua = m.a / s;
    const double ub = m.b / s;
    const double mean_sq = ub > ua ? error_integral(ua, ub, lo, hi) / (ub - ua) : point_error(ua, lo, hi);
    sum += m.count * mean_sq;
  }
  return sum * s * s / total;
}

// Minimises f over t in (0, bound]: candidates at multiples of `step` (at most ~512 of them, then every
// step around the best) and t = bound itself, so the unclipped bound is always tried.
double scan_line(const std::function<double(double)>& f, double bound, double step, double& best_value) {
  double best_t = bound;
  best_value = f(bound);
  if (!(bound > 0.0) || !(step > 0.0)) return best_t;
  const auto count = static_cast<std::int64_t>(std::floor(bound / step));
  const std::int64_t stride = std::max<std::int64_t>(1, count / 512);
  std::int64_t best_k = -1;
  auto consider = [&](std::int64_t k) {
    if (k < 1 || k > count) return;
    const double t = static_cast<double>(k) * step;
    const double v = f(t);
    if (v < best_value) {
      best_value = v;
      best_t = t;
      best_k = k;
    }
  };
  for (std::int64_t k = stride; k <= count; k += stride) consider(k);
  const std::int64_t center = best_k >= 0 ? best_k : count;
  if (stride > 1) {
    for (std::int64_t k = center - stride + 1; k < center + stride; ++k) consider(k);
  }
  return best_t;
}

QParams params_for(double lo, double hi, const QuantSpec& spec) {
  return choose_qparams(static_cast<float>(lo), static_cast<float>(hi), spec);
}

}  // namespace

ClipRange minmax_clip(const Histogram& h) {
  require_data(h);
  return {min_neg(h), max_pos(h)};
}

ClipRange percentile_clip(const Histogram& h, double percentile, const QuantSpec& spec) {
  require_data(h);
  if (!(percentile > 0.0 && percentile <= 100.0)) {
    throw Error("percentile must lie in (0, 100], got " + std::to_string(percentile));
  }
  const double q = percentile / 100.0;
  if (spec.scheme == Scheme::kSymmetric) return symmetric_clip(h, h.abs_quantile(q));
  const double lo = std::min(h.quantile(1.0 - q), 0.0);
  const double hi = std::max(h.quantile(q), 0.0);
  return {static_cast<float>(lo), static_cast<float>(hi)};
}

double expected_quant_mse(const Histogram& h, const QParams& p, QRange r) {
  require_data(h);
  check_scale(p.scale);
  return expected_error(masses(h), static_cast<double>(h.total()), p, r);
}

double clipped_fraction(const Histogram& h, const QParams& p, QRange r) {
  require_data(h);
  const double s = p.scale;
  const double low_edge = (static_cast<double>(r.min - p.zero_point) - 0.5) * s;
  const double high_edge = (static_cast<double>(r.max - p.zero_point) + 0.5) * s;
  const double below = low_edge <= h.min() ? 0.0 : h.count_below(low_edge);
  const double above = static_cast<double>(h.total()) - h.count_below(high_edge);
  return std::clamp((below + above) / static_cast<double>(h.total()), 0.0, 1.0);
}

ClipRange mse_clip(const Histogram& h, const QuantSpec& spec) {
  require_data(h);
  const std::vector<Mass> ms = masses(h);
  const double total = static_cast<double>(h.total());
  const QRange r = spec.range();
  const double lo0 = min_neg(h);
  const double hi0 = max_pos(h);
  if (lo0 == 0.0 && hi0 == 0.0) return {0.0f, 0.0f};
  const double step = h.bin_width();
  double value = 0.0;
  if (spec.scheme == Scheme::kSymmetric) {
    const double top = std::max(-lo0, hi0);
    const double t = scan_line(
        [&](double c) { return expected_error(ms, total, params_for(-c, c, spec), r); }, top, step, value);
    return symmetric_clip(h, t);
  }
  // Affine: coordinate descent from the full range. Each scan keeps the current bound as a candidate
  // only through `bound`, so start each scan from the current best and accept strict improvements.
  double lo = lo0;
  double hi = hi0;
  double best = expected_error(ms, total, params_for(lo, hi, spec), r);
  for (int round = 0; round < 8; ++round) {
    bool improved = false;
    if (hi0 > 0.0) {
      const double t = scan_line(
          [&](double c) { return expected_error(ms, total, params_for(lo, c, spec), r); }, hi0, step, value);
      if (value < best) {
        best = value;
        hi = t;
        improved = true;
      }
    }
    if (lo0 < 0.0) {
      const double t =
          scan_line([&](double c) { return expected_error(ms, total, params_for(-c, hi, spec), r); }, -lo0,
                    step, value);
      if (value < best) {
        best = value;
        lo = -t;
        improved = true;
      }
    }
    if (!improved) break;
  }
  return {static_cast<float>(lo), static_cast<float>(hi)};
}

ClipRange entropy_clip(const Histogram& h, const QuantSpec& spec) {
  require_data(h);
  const double top = std::max(-static_cast<double>(min_neg(h)), static_cast<double>(max_pos(h)));
  if (top == 0.0) return {0.0f, 0.0f};
  // Fold the signed histogram into one of |x|. Zero is an edge of the canonical grid, so a bin
  // [g w, (g+1) w) folds whole into the |x| bin g (g >= 0) or -g-1 (g < 0); widen by powers of two
  // until the |x| bins fit in the same number of bins.
  const int bins = h.bins();
  int k = 0;
  while (std::floor(std::ldexp(top / h.bin_width(), -k)) + 1 > bins) ++k;
  const double width = std::ldexp(h.bin_width(), k);
  const auto nbins = static_cast<std::int64_t>(std::floor(top / width)) + 1;
  std::vector<double> mag(static_cast<std::size_t>(nbins), 0.0);
  const auto counts = h.counts();
  for (std::size_t j = 0; j < counts.size(); ++j) {
    if (counts[j] == 0) continue;
    const std::int64_t g = h.first() + static_cast<std::int64_t>(j);
    const std::int64_t base = g >= 0 ? g : -g - 1;
    const std::int64_t m = std::min<std::int64_t>(base >> k, nbins - 1);
    mag[static_cast<std::size_t>(m)] += static_cast<double>(counts[j]);
  }

  // As NVIDIA's pytorch-quantization does, the bin at zero takes its neighbour's count: ReLU outputs and
  // padding put a spike there that would otherwise dominate P and pull the threshold down.
  if (nbins > 1) mag[0] = mag[1];

  const QRange r = spec.range();
  const std::int64_t codes = r.max - r.min + 1;
  const bool one_sided = spec.scheme == Scheme::kAffine && h.min() >= 0.0f;
  const std::int64_t levels = std::max<std::int64_t>(1, one_sided ? codes : codes / 2);
  if (nbins <= levels) return symmetric_clip(h, top);

  std::vector<double> suffix(static_cast<std::size_t>(nbins) + 1, 0.0);
  for (std::int64_t i = nbins - 1; i >= 0; --i)
    suffix[static_cast<std::size_t>(i)] =
        suffix[static_cast<std::size_t>(i) + 1] + mag[static_cast<std::size_t>(i)];

  std::vector<double> p, q;
  // KL(P || Q) for the candidate that keeps the first i bins. Both distributions are smoothed as ONNX
  // Runtime's calibrator does (eps moved onto empty bins), so an empty Q bin under a non-empty P bin
  // costs a large but finite amount.
  auto divergence = [&](std::int64_t i) {
    p.assign(mag.begin(), mag.begin() + i);
    p[static_cast<std::size_t>(i) - 1] += suffix[static_cast<std::size_t>(i)];
    q.assign(static_cast<std::size_t>(i), 0.0);
    for (std::int64_t l = 0; l < levels; ++l) {
      const std::int64_t b = l * i / levels;
      const std::int64_t e = (l + 1) * i / levels;
      double sum = 0.0;
      std::int64_t nonzero = 0;
      for (std::int64_t j = b; j < e; ++j) {
        sum += mag[static_cast<std::size_t>(j)];
        nonzero += mag[static_cast<std::size_t>(j)] > 0.0;
      }
      if (nonzero == 0) continue;
      for (std::int64_t j = b; j < e; ++j)
        if (mag[static_cast<std::size_t>(j)] > 0.0)
          q[static_cast<std::size_t>(j)] = sum / static_cast<double>(nonzero);
    }
    auto normalize_and_smooth = [](std::vector<double>& d) {
      double sum = 0.0;
      std::size_t zeros = 0;
      for (const double v : d) {
        sum += v;
        zeros += v == 0.0;
      }
      if (sum <= 0.0 || zeros == d.size()) return false;
      constexpr double kEps = 1e-4;
      const double take = kEps * static_cast<double>(zeros) / static_cast<double>(d.size() - zeros);
      for (double& v : d) v = v == 0.0 ? kEps : v / sum - take;
      return true;
    };
    if (!normalize_and_smooth(p) || !normalize_and_smooth(q)) return std::numeric_limits<double>::infinity();
    double kl = 0.0;
    for (std::size_t j = 0; j < p.size(); ++j) {
      if (p[j] > 0.0 && q[j] > 0.0) kl += p[j] * std::log(p[j] / q[j]);
    }
    return kl;
  };

  // Every candidate from `levels` bins up to all of them; beyond ~512 candidates, a strided pass and then
  // every candidate around the best.
  const std::int64_t span = nbins - levels;
  const std::int64_t stride = std::max<std::int64_t>(1, span / 512);
  std::int64_t best_i = nbins;
  double best = divergence(nbins);
  auto consider = [&](std::int64_t i) {
    if (i < levels || i > nbins) return;
    const double d = divergence(i);
    if (d < best) {
      best = d;
      best_i = i;
    }
  };
  for (std::int64_t i = levels; i < nbins; i += stride) consider(i);
  if (stride > 1) {
    const std::int64_t center = best_i;
    for (std::int64_t i = center - stride + 1; i < center + stride; ++i) consider(i);
  }
  const double t = std::min(top, static_cast<double>(best_i) * width);
  return symmetric_clip(h, t);
}

}  // namespace qk
