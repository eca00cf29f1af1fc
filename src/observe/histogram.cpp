// The canonical power-of-two histogram (see observe/histogram.hpp for why the grid looks like this).
#include "quantkit/observe/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "quantkit/core/error.hpp"

namespace qk {

namespace {

constexpr int kMinExponent = -180;  // the grid of an all-zero histogram; any width works there

// floor(v / 2^k) for k >= 0 (arithmetic shift is floor division in C++20).
std::int64_t shift_floor(std::int64_t v, int k) {
  if (k >= 63) return v < 0 ? -1 : 0;
  return v >> k;
}

std::int64_t floor_index(double x, int exponent) {
  return static_cast<std::int64_t>(std::floor(std::ldexp(x, -exponent)));
}

}  // namespace

HistogramGrid histogram_grid(float lo, float hi, int bins) {
  if (!(std::isfinite(lo) && std::isfinite(hi)) || lo > hi) {
    throw Error("histogram range [" + std::to_string(lo) + ", " + std::to_string(hi) + "] is not usable");
  }
  const double magnitude = std::max(std::fabs(static_cast<double>(lo)), std::fabs(static_cast<double>(hi)));
  // Below 2^-30 of the largest magnitude the bins are finer than float32 can tell apart anyway; the floor
  // also keeps every index |x| / w below 2^32.
  const int floor_exponent = magnitude > 0.0 ? std::ilogb(magnitude) - 30 : kMinExponent;
  const double range = static_cast<double>(hi) - static_cast<double>(lo);
  int e = floor_exponent;
  // 2^e <= range / bins / 2 cannot cover the range, so the search starts no higher than the answer.
  if (range > 0.0) e = std::max(e, std::ilogb(range / bins) - 1);
  for (;; ++e) {
    const std::int64_t first = floor_index(lo, e);
    if (floor_index(hi, e) - first < bins) return {e, first};
  }
}

Histogram::Histogram(int bins) {
  if (bins < 16 || bins > (1 << 20)) {
    throw Error("histogram bins must lie in [16, 1048576], got " + std::to_string(bins));
  }
  counts_.assign(static_cast<std::size_t>(bins), 0);
}

void Histogram::grow_to(float lo, float hi) {
  if (empty()) {
    min_ = lo;
    max_ = hi;
    const HistogramGrid g = histogram_grid(lo, hi, bins());
    exponent_ = g.exponent;
    first_ = g.first;
    std::fill(counts_.begin(), counts_.end(), 0);
    return;
  }
  const float new_min = std::min(min_, lo);
  const float new_max = std::max(max_, hi);
  if (new_min == min_ && new_max == max_) return;
  const HistogramGrid g = histogram_grid(new_min, new_max, bins());
  min_ = new_min;
  max_ = new_max;
  if (g.exponent == exponent_ && g.first == first_) return;
  // The grid only ever coarsens (its exponent is monotone in the range), so each old bin lands whole.
  const int k = g.exponent - exponent_;
  if (k < 0) throw Error("histogram grid shrank while growing (internal error)");
  std::vector<std::uint64_t> moved(counts_.size(), 0);
  for (std::size_t j = 0; j < counts_.size(); ++j) {
    if (counts_[j] == 0) continue;
    const std::int64_t target = shift_floor(first_ + static_cast<std::int64_t>(j), k) - g.first;
    if (target < 0 || target >= bins()) throw Error("histogram re-binning left the grid (internal error)");
    moved[static_cast<std::size_t>(target)] += counts_[j];
  }
  counts_ = std::move(moved);
  exponent_ = g.exponent;
  first_ = g.first;
}

template <class T>
void Histogram::add_values(std::span<const T> x, float lo, float hi) {
  if (x.empty()) return;
  grow_to(lo, hi);
  // A power of two: x * inv is exact, so the index is exactly floor(x / w).
  const double inv = std::ldexp(1.0, -exponent_);
  const std::int64_t last = bins() - 1;
  std::uint64_t* counts = counts_.data();
  for (const T v : x) {
    std::int64_t j = static_cast<std::int64_t>(std::floor(static_cast<double>(v) * inv)) - first_;
    j = std::clamp<std::int64_t>(j, 0, last);  // only reachable when a caller's [lo, hi] was wrong
    ++counts[j];
  }
  total_ += x.size();
}

void Histogram::add(std::span<const float> x, float lo, float hi) { add_values<float>(x, lo, hi); }
void Histogram::add(std::span<const double> x, float lo, float hi) { add_values<double>(x, lo, hi); }

void Histogram::add(std::span<const float> x) {
  if (x.empty()) return;
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  add_values<float>(x, *lo, *hi);
}

void Histogram::add_value(float v, std::uint64_t count) {
  if (count == 0) return;
  if (!std::isfinite(v)) throw Error("histogram value is not finite");
  grow_to(v, v);
  const std::int64_t j = floor_index(v, exponent_) - first_;
  counts_[static_cast<std::size_t>(j)] += count;
  total_ += count;
}

void Histogram::merge(const Histogram& other) {
  if (other.bins() != bins()) {
    throw Error("cannot merge histograms of " + std::to_string(bins()) + " and " +
                std::to_string(other.bins()) + " bins");
  }
  if (other.empty()) return;
  if (empty()) {
    *this = other;
    return;
  }
  grow_to(other.min_, other.max_);
  const int k = exponent_ - other.exponent_;
  if (k < 0) throw Error("merged histogram grid is finer than an input (internal error)");
  for (std::size_t j = 0; j < other.counts_.size(); ++j) {
    if (other.counts_[j] == 0) continue;
    const std::int64_t target = shift_floor(other.first_ + static_cast<std::int64_t>(j), k) - first_;
    if (target < 0 || target >= bins()) throw Error("histogram merge left the grid (internal error)");
    counts_[static_cast<std::size_t>(target)] += other.counts_[j];
  }
  total_ += other.total_;
}

Histogram Histogram::from_state(int bins, float min, float max, int exponent, std::int64_t first,
                                std::vector<std::uint64_t> counts) {
  Histogram h(bins);
  if (counts.size() != static_cast<std::size_t>(bins))
    throw Error("histogram state has the wrong number of bins");
  std::uint64_t total = 0;
  for (const std::uint64_t c : counts) {
    if (c > std::numeric_limits<std::uint64_t>::max() - total) throw Error("histogram state counts overflow");
    total += c;
  }
  if (total == 0) return h;
  const HistogramGrid g = histogram_grid(min, max, bins);  // validates min and max too
  if (g.exponent != exponent || g.first != first) {
    throw Error("histogram state's grid does not match its range [" + std::to_string(min) + ", " +
                std::to_string(max) + "]");
  }
  const std::int64_t lo_bin = floor_index(min, exponent) - first;
  const std::int64_t hi_bin = floor_index(max, exponent) - first;
  if (counts[static_cast<std::size_t>(lo_bin)] == 0 || counts[static_cast<std::size_t>(hi_bin)] == 0) {
    throw Error("histogram state's min or max falls in an empty bin");
  }
  for (std::int64_t j = 0; j < bins; ++j) {
    if ((j < lo_bin || j > hi_bin) && counts[static_cast<std::size_t>(j)] != 0)
      throw Error("histogram state has counts outside its range");
  }
  h.counts_ = std::move(counts);
  h.total_ = total;
  h.min_ = min;
  h.max_ = max;
  h.exponent_ = exponent;
  h.first_ = first;
  return h;
}

double Histogram::count_below(double t) const {
  if (empty() || t < min_) return 0.0;
  if (t >= max_) return static_cast<double>(total_);
  const double u = std::ldexp(t, -exponent_) - static_cast<double>(first_);
  const std::int64_t j = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::floor(u)), 0, bins() - 1);
  double below = 0.0;
  for (std::int64_t i = 0; i < j; ++i) below += static_cast<double>(counts_[static_cast<std::size_t>(i)]);
  const double frac = std::clamp(u - static_cast<double>(j), 0.0, 1.0);
  return below + frac * static_cast<double>(counts_[static_cast<std::size_t>(j)]);
}

double Histogram::quantile(double q) const {
  if (empty()) throw Error("quantile of an empty histogram");
  if (!(q >= 0.0 && q <= 1.0)) throw Error("quantile must lie in [0, 1]");
  const double target = q * static_cast<double>(total_);
  if (target <= 0.0) return min_;
  double below = 0.0;
  for (int j = 0; j < bins(); ++j) {
    const double c = static_cast<double>(counts_[static_cast<std::size_t>(j)]);
    if (c > 0.0 && below + c >= target) {
      const double t = edge(j) + bin_width() * (target - below) / c;
      return std::clamp(t, static_cast<double>(min_), static_cast<double>(max_));
    }
    below += c;
  }
  return max_;
}

double Histogram::abs_quantile(double q) const {
  if (empty()) throw Error("quantile of an empty histogram");
  if (!(q >= 0.0 && q <= 1.0)) throw Error("quantile must lie in [0, 1]");
  const double target = q * static_cast<double>(total_);
  const double top = std::max(std::fabs(static_cast<double>(min_)), std::fabs(static_cast<double>(max_)));
  // Values in [-t, t]: those <= t minus those < -t (none when -t is at or below the minimum).
  auto inside = [&](double t) { return count_below(t) - (-t <= min_ ? 0.0 : count_below(-t)); };
  if (target <= 0.0) return 0.0;
  if (inside(top) < target) return top;
  double lo = 0.0;
  double hi = top;
  for (int it = 0; it < 200 && hi - lo > std::ldexp(bin_width(), -20); ++it) {
    const double mid = lo + (hi - lo) / 2;
    (inside(mid) >= target ? hi : lo) = mid;
  }
  return hi;
}

}  // namespace qk
