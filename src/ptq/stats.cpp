// Tensor statistics and error measures.
#include "quantkit/ptq/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "quantkit/core/error.hpp"

namespace qk {

TensorStats compute_stats(std::span<const float> x, int histogram_bins, std::int64_t max_exact) {
  TensorStats s;
  s.percentile_ranks = {0.1, 1, 5, 25, 50, 75, 95, 99, 99.9};
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  double mean = 0, m2 = 0;  // Welford, in double
  for (const float v : x) {
    if (!std::isfinite(v)) {
      ++s.nonfinite;
      continue;
    }
    ++s.count;
    lo = std::min(lo, static_cast<double>(v));
    hi = std::max(hi, static_cast<double>(v));
    const double d = v - mean;
    mean += d / static_cast<double>(s.count);
    m2 += d * (v - mean);
  }
  if (s.count == 0) return s;
  s.min = lo;
  s.max = hi;
  s.mean = mean;
  s.std = std::sqrt(m2 / static_cast<double>(s.count));

  const std::int64_t stride = s.count > max_exact ? (s.count + max_exact - 1) / max_exact : 1;
  s.percentiles_sampled = stride > 1;
  std::vector<float> sample;
  sample.reserve(static_cast<std::size_t>(s.count / stride + 1));
  std::int64_t k = 0;
  for (const float v : x) {
    if (std::isfinite(v) && (k++ % stride) == 0) sample.push_back(v);
  }
  std::sort(sample.begin(), sample.end());
  for (const double rank : s.percentile_ranks) {
    // Nearest rank: the smallest value with at least rank% of the values at or below it.
    const auto n = static_cast<double>(sample.size());
    auto idx = static_cast<std::size_t>(std::max(1.0, std::ceil(rank / 100.0 * n))) - 1;
    idx = std::min(idx, sample.size() - 1);
    s.percentile_values.push_back(sample[idx]);
  }
  s.histogram.assign(static_cast<std::size_t>(std::max(1, histogram_bins)), 0);
  const double width = (hi - lo) / static_cast<double>(s.histogram.size());
  for (const float v : x) {
    if (!std::isfinite(v)) continue;
    auto bin = width > 0 ? static_cast<std::size_t>((v - lo) / width) : 0;
    bin = std::min(bin, s.histogram.size() - 1);
    ++s.histogram[bin];
  }
  return s;
}

void ErrorAccumulator::add(std::span<const float> reference, std::span<const float> approx) {
  if (reference.size() != approx.size()) throw Error("compare: reference and approximation differ in size");
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double r = reference[i];
    const double e = r - static_cast<double>(approx[i]);
    sum_sq_err_ += e * e;
    sum_sq_ref_ += r * r;
    max_abs_ = std::max(max_abs_, std::abs(e));
  }
  count_ += static_cast<std::int64_t>(reference.size());
}

double relative_rmse(const ErrorStats& e) {
  if (e.signal_power > 0) return std::sqrt(e.mse / e.signal_power);
  return e.mse > 0 ? std::numeric_limits<double>::infinity() : 0.0;
}

ErrorStats ErrorAccumulator::result() const {
  ErrorStats s;
  if (count_ == 0) return s;
  s.mse = sum_sq_err_ / static_cast<double>(count_);
  s.max_abs = max_abs_;
  s.signal_power = sum_sq_ref_ / static_cast<double>(count_);
  s.sqnr_db = sum_sq_err_ == 0 ? std::numeric_limits<double>::infinity()
                               : 10.0 * std::log10(sum_sq_ref_ / sum_sq_err_);
  return s;
}

ErrorStats compare(std::span<const float> reference, std::span<const float> approx) {
  ErrorAccumulator acc;
  acc.add(reference, approx);
  return acc.result();
}

}  // namespace qk
