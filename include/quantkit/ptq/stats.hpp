// Summary statistics of a tensor (qtool inspect) and error measures of an approximation against its
// reference (MSE, max abs error, SQNR), streamed so large mapped inputs are read once.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace qk {

struct TensorStats {
  std::int64_t count = 0;
  std::int64_t nonfinite = 0;  // NaN/Inf values, left out of every other figure
  double min = 0, max = 0, mean = 0, std = 0;
  std::vector<double> percentile_ranks;   // e.g. 0.1, 1, 50, 99, 99.9
  std::vector<double> percentile_values;  // nearest-rank percentiles
  bool percentiles_sampled = false;       // true when taken from an evenly strided sample (huge inputs)
  std::vector<std::int64_t> histogram;    // counts over [min, max] in equal bins
};

// max_exact: inputs with more finite values than this take percentiles from an evenly strided sample
// of max_exact values instead of all of them (the copy they need is what this bounds).
TensorStats compute_stats(std::span<const float> x, int histogram_bins = 40,
                          std::int64_t max_exact = std::int64_t{1} << 24);

struct ErrorStats {
  double mse = 0;
  double max_abs = 0;
  double sqnr_db = 0;       // 10 log10(sum ref^2 / sum (ref - approx)^2); +inf when exact
  double signal_power = 0;  // mean ref^2
};

ErrorStats compare(std::span<const float> reference, std::span<const float> approx);

// RMSE over the reference's RMS, sqrt(mse / signal_power): llama.cpp's quantize-stats "relative error";
// 0 when both are 0, +inf for an error on an all-zero reference.
double relative_rmse(const ErrorStats& e);

// Streaming form for chunked inputs.
class ErrorAccumulator {
 public:
  void add(std::span<const float> reference, std::span<const float> approx);
  ErrorStats result() const;

 private:
  double sum_sq_err_ = 0, sum_sq_ref_ = 0, max_abs_ = 0;
  std::int64_t count_ = 0;
};

}  // namespace qk
