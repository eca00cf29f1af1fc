// A streaming histogram in constant memory for the percentile, entropy and mse observers.
//
// Why a canonical power-of-two grid: the bin width is w = 2^e and every bin edge is an integer multiple
// of w, with e the smallest exponent whose `bins` bins cover [min, max] of everything seen. When the range
// grows, e grows and each old bin falls wholly inside one new bin (edges of the coarser grid are edges of
// the finer one), so re-binning moves whole counts and never splits one. The grid is a function of the
// overall min and max alone, so feeding the data in one batch, in a hundred, or in shards merged later
// gives the same counts bit for bit. The cost: the data spans between half and all of the bins (at least
// (bins - 1) / 2 of them), so 2048 bins resolve the range to at least 1/1023.
//
// Bin indices are exact: floor(x / w) is a power-of-two scaling and a floor, and the grid keeps
// |x| / w < 2^32 (e is at least ilogb(max |x|) - 30), so there is no rounding anywhere.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace qk {

class Histogram {
 public:
  static constexpr int kDefaultBins = 2048;

  explicit Histogram(int bins = kDefaultBins);

  int bins() const { return static_cast<int>(counts_.size()); }
  std::uint64_t total() const { return total_; }
  bool empty() const { return total_ == 0; }
  // The exact smallest and largest value added (meaningless while empty()).
  float min() const { return min_; }
  float max() const { return max_; }
  // Bin j covers [(first + j) * w, (first + j + 1) * w) with w = 2^exponent.
  int exponent() const { return exponent_; }
  std::int64_t first() const { return first_; }
  double bin_width() const { return std::ldexp(1.0, exponent_); }
  double edge(std::int64_t j) const { return std::ldexp(static_cast<double>(first_ + j), exponent_); }
  std::span<const std::uint64_t> counts() const { return counts_; }

  // Adds values whose min and max the caller already knows (the observers compute them with the SIMD
  // min/max kernel). Every value must be finite and lie in [lo, hi].
  void add(std::span<const float> x, float lo, float hi);
  void add(std::span<const double> x, float lo, float hi);
  // Adds values after computing their range; skips nothing, so callers reject NaN/Inf first.
  void add(std::span<const float> x);
  // Adds count copies of one value (tests and state restore).
  void add_value(float v, std::uint64_t count = 1);

  // Adds another histogram's counts (same number of bins). The result equals the histogram of both
  // inputs' data added to one histogram.
  void merge(const Histogram& other);

  // Restores a saved state (see observe/observer.hpp); validates it.
  static Histogram from_state(int bins, float min, float max, int exponent, std::int64_t first,
                              std::vector<std::uint64_t> counts);

  // Number of values below t, with each bin's values spread uniformly over the bin. Exact at bin edges
  // (up to values sitting exactly on an edge).
  double count_below(double t) const;
  // The smallest t with count_below(t) >= q * total(), clamped to [min, max], for q in [0, 1]. It lies
  // within one bin width of the order statistic x_(ceil(q * total)).
  double quantile(double q) const;
  // The smallest t >= 0 with count_below(t) - count_below(-t) >= q * total(): the q-quantile of |x|, also
  // within one bin width of the exact order statistic of |x|.
  double abs_quantile(double q) const;

 private:
  void grow_to(float lo, float hi);
  template <class T>
  void add_values(std::span<const T> x, float lo, float hi);

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  float min_ = 0.0f;
  float max_ = 0.0f;
  int exponent_ = 0;
  std::int64_t first_ = 0;
};

// The canonical grid for a range: the smallest exponent e (and first = floor(lo / 2^e)) such that `bins`
// bins of width 2^e starting at first * 2^e cover [lo, hi], with e >= ilogb(max(|lo|, |hi|)) - 30.
struct HistogramGrid {
  int exponent = 0;
  std::int64_t first = 0;
};
HistogramGrid histogram_grid(float lo, float hi, int bins);

}  // namespace qk
