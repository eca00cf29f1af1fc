// PyTorch HistogramObserver's histogram and L2 search, operation for operation (see the header). Each
// comment names the torch expression a line mirrors; "f32" marks a float32 tensor operation, "py" a
// Python float (double) one. The library is compiled with -ffp-contract=off, so nothing here is fused.
#include "quantkit/observe/torch_histogram.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "quantkit/core/error.hpp"

namespace qk {

namespace {

void check_bins(int bins, int upsample_rate) {
  if (bins < 1 || bins > (1 << 24))
    throw Error("histogram bins must lie in [1, 16777216], got " + std::to_string(bins));
  if (upsample_rate < 1)
    throw Error("histogram upsample rate must be positive, got " + std::to_string(upsample_rate));
}

// c10::div_floor_floating, the scalar twin of torch.div(a, b, rounding_mode='floor') on float32.
float div_floor(float a, float b) {
  if (b == 0.0f) return std::floor(a / b);  // only reached with b = 0, which the callers exclude
  const float mod = std::fmod(a, b);
  float div = (a - mod) / b;
  if (mod != 0.0f && ((b < 0.0f) != (mod < 0.0f))) div -= 1.0f;
  if (div == 0.0f) return std::copysign(0.0f, a / b);
  float floordiv = std::floor(div);
  if (div - floordiv > 0.5f) floordiv += 1.0f;
  return floordiv;
}

// _get_norm: density * (end^3 - begin^3) / 3, each step a float32 tensor operation.
float l2_norm(float delta_begin, float delta_end, float density) {
  const float norm = (delta_end * delta_end * delta_end - delta_begin * delta_begin * delta_begin) / 3.0f;
  return density * norm;
}

}  // namespace

TorchHistogram::TorchHistogram(int bins, int upsample_rate) : upsample_rate_(upsample_rate) {
  check_bins(bins, upsample_rate);
  counts_.assign(static_cast<std::size_t>(bins), 0.0f);
}

std::vector<float> torch_histc(std::span<const float> x, int bins, double lo, double hi) {
  // ATen's histc_select_outer_bin_edges: min == max means "the data's range"; an empty range widens by 1
  // on each side; the edges are float32 (linspace's first and last edge are exactly lo and hi).
  if (lo == hi && !x.empty()) {
    const auto [mn, mx] = std::minmax_element(x.begin(), x.end());
    lo = *mn;
    hi = *mx;
  }
  if (lo == hi) {
    lo -= 1.0;
    hi += 1.0;
  }
  const auto left = static_cast<float>(lo);
  const auto right = static_cast<float>(hi);
  std::vector<float> counts(static_cast<std::size_t>(bins), 0.0f);
  const float range = right - left;
  const auto nbins = static_cast<float>(bins);
  for (const float v : x) {
    if (v < left || v > right) continue;
    // histogramdd LINEAR_INTERPOLATION: (elt - leftmost) * (num_edges - 1) / (rightmost - leftmost)
    auto pos = static_cast<std::int64_t>((v - left) * nbins / range);
    if (pos >= bins) pos = bins - 1;  // the rightmost edge belongs to the last bin
    counts[static_cast<std::size_t>(pos)] += 1.0f;
  }
  return counts;
}

void TorchHistogram::reset(std::span<const float> x, float lo, float hi) {
  min_ = lo;
  max_ = hi;
  // PyTorch 1.13 passes min=int(min_val), max=int(max_val): the histogram's edges are the observed range
  // truncated toward zero, while the search below uses the untruncated range. The golden
  // observer_histogram cases record exactly this (values beyond the truncated range are not counted).
  counts_ = torch_histc(x, bins(), std::trunc(double{lo}), std::trunc(double{hi}));
}

void TorchHistogram::add(std::span<const float> x, float lo, float hi) {
  if (x.empty()) return;
  // forward(): an uninitialised or constant range restarts the histogram from this batch.
  if (empty() || min_ == max_) {
    reset(x, lo, hi);
    return;
  }
  const float combined_min = std::min(lo, min_);
  float combined_max = std::max(hi, max_);
  // _adjust_min_max (1.13): the new range is a whole number (downsample_rate) of old bins divided by
  // upsample_rate; only the max is relaxed, so a one-sided range keeps its min.
  const auto nbins = static_cast<float>(bins());
  const float hist_bin_width =
      (max_ - min_) / static_cast<float>(std::int64_t{bins()} * upsample_rate_);  // f32
  const float old_span = nbins * hist_bin_width;                                  // f32
  const auto downsample_rate =
      static_cast<std::int64_t>(std::ceil((combined_max - combined_min) / old_span));  // f32, int()
  const float e = static_cast<float>(downsample_rate) * old_span - (combined_max - combined_min);  // f32
  combined_max = combined_max + e;
  const auto start_idx =  // torch.round: half to even
      static_cast<std::int64_t>(std::nearbyint((min_ - combined_min) / hist_bin_width));

  std::vector<float> combined =
      torch_histc(x, bins(), std::trunc(double{combined_min}), std::trunc(double{combined_max}));
  if (combined_min == min_ && combined_max == max_) {
    for (std::size_t j = 0; j < combined.size(); ++j) combined[j] += counts_[j];
  } else {
    // _combine_histograms: repeat each old bin upsample_rate times at offset start_idx on a grid of
    // bins * downsample_rate cells, cumulative sum in double, read every downsample_rate-th cell. Only
    // the upsampled cells are non-zero, so the sum walks those alone (adding zeros changes nothing).
    // torch would fail if the upsampled run overran the grid by a rounding; the overrun is dropped here.
    const auto n = static_cast<std::int64_t>(bins());
    const std::int64_t grid = n * downsample_rate;
    const std::int64_t run_end = std::min(start_idx + n * upsample_rate_, grid);
    std::int64_t cell = std::max<std::int64_t>(start_idx, 0);
    double integral = 0.0;
    float shifted = 0.0f;  // the previous integral, stored in a float32 tensor by torch
    for (std::int64_t j = 0; j < n; ++j) {
      const std::int64_t end = std::min((j + 1) * downsample_rate, run_end);
      for (; cell < end; ++cell)
        integral += double{counts_[static_cast<std::size_t>((cell - start_idx) / upsample_rate_)]};
      const double interpolated = (integral - double{shifted}) / upsample_rate_;  // double tensor
      combined[static_cast<std::size_t>(j)] += static_cast<float>(interpolated);
      shifted = static_cast<float>(integral);
    }
  }
  counts_ = std::move(combined);
  min_ = combined_min;
  max_ = combined_max;
}

TorchHistogram TorchHistogram::from_state(int bins, int upsample_rate, float min, float max,
                                          std::vector<float> counts) {
  TorchHistogram h(bins, upsample_rate);
  if (counts.size() != static_cast<std::size_t>(bins))
    throw Error("histogram state: " + std::to_string(counts.size()) + " counts for " + std::to_string(bins) +
                " bins");
  if (!(std::isfinite(min) && std::isfinite(max) && min <= max))
    throw Error("histogram state: range [" + std::to_string(min) + ", " + std::to_string(max) +
                "] is not a finite range");
  // PyTorch's _combine_histograms takes differences of a float32 cumsum, so a merged histogram (ours is
  // the same, operation for operation) can hold counts a rounding error below zero: accept those, refuse
  // counts below that by more than float32 rounding of the total could explain.
  double total = 0;
  for (const float c : counts) {
    if (!std::isfinite(c)) throw Error("histogram state: a count is not finite");
    total += std::abs(double{c});
  }
  for (const float c : counts)
    if (c < -(1e-4 * total + 1e-3))
      throw Error("histogram state: a count is negative (" + std::to_string(c) + ")");
  h.counts_ = std::move(counts);
  h.min_ = min;
  h.max_ = max;
  return h;
}

double histogram_l2_error(const TorchHistogram& h, std::int64_t dst_bins, int start_bin, int end_bin) {
  const double bin_width = (double{h.max()} - double{h.min()}) / h.bins();        // py
  const double dst_bin_width = bin_width * (end_bin - start_bin + 1) / dst_bins;  // py
  if (dst_bin_width == 0.0) return 0.0;
  const auto bw = static_cast<float>(bin_width);  // the scalar as a float32 tensor operand
  const auto dbw = static_cast<float>(dst_bin_width);
  const auto half = static_cast<float>(dst_bin_width / 2);
  const auto neg_half = static_cast<float>(-dst_bin_width / 2);
  const auto last = static_cast<float>(dst_bins - 1);
  // torch.tensor(+-dst_bin_width / 2): one whole destination bin's norm, a 0-dim float32 computation.
  const float whole = (half * half * half - neg_half * neg_half * neg_half) / 3.0f;
  const std::span<const float> counts = h.counts();
  // torch sums the float32 norms with its cascade sum; the double sum here rounds to the same float32
  // unless the sum is within an ulp of a rounding boundary (the golden cases are not).
  double sum = 0.0;
  for (int i = 0; i < h.bins(); ++i) {
    const float src_begin = static_cast<float>(i - start_bin) * bw;
    const float src_end = src_begin + bw;
    const float dst_of_begin = std::clamp(div_floor(src_begin, dbw), 0.0f, last);
    const float dst_of_begin_center = (dst_of_begin + 0.5f) * dbw;
    const float dst_of_end = std::clamp(div_floor(src_end, dbw), 0.0f, last);
    const float density = counts[static_cast<std::size_t>(i)] / bw;
    float norm = 0.0f + l2_norm(src_begin - dst_of_begin_center, 1.0f * half, density);
    norm += (dst_of_end - dst_of_begin - 1.0f) * (density * whole);
    const float dst_of_end_center = dst_of_end * dbw + half;
    norm += l2_norm(neg_half, src_end - dst_of_end_center, density);
    sum += norm;
  }
  return static_cast<double>(static_cast<float>(sum));  // norm.sum().item(): a float32 read as a double
}

ClipRange histogram_l2_search(const TorchHistogram& h, std::int64_t dst_bins) {
  if (h.empty()) throw Error("histogram observer has seen no data");
  const int bins = h.bins();
  const std::span<const float> counts = h.counts();
  const float bin_width = (h.max() - h.min()) / static_cast<float>(bins);  // f32
  // torch.cumsum on float32 accumulates in double on the CPU and stores float32; torch.sum accumulates
  // in float32 (cascade), which for whole-number counts below 2^24 is the exact sum either way.
  std::vector<float> csum(counts.size());
  double running = 0.0;
  for (std::size_t j = 0; j < counts.size(); ++j) {
    running += double{counts[j]};
    csum[j] = static_cast<float>(running);
  }
  const auto total = static_cast<double>(static_cast<float>(running));

  const double stepsize = 1e-5;
  double alpha = 0.0;
  double beta = 1.0;
  int start_bin = 0;
  int end_bin = bins - 1;
  double norm_min = std::numeric_limits<double>::infinity();
  while (alpha < beta) {
    const double next_alpha = alpha + stepsize;
    const double next_beta = beta - stepsize;
    // cSum[l] < next_alpha * total compares a float32 tensor with a Python float: the float is rounded
    // to float32 first (a wrapped scalar never promotes a tensor).
    const auto lower = static_cast<float>(next_alpha * total);
    const auto upper = static_cast<float>(next_beta * total);
    int l = start_bin;
    int r = end_bin;
    while (l < end_bin && csum[static_cast<std::size_t>(l)] < lower) ++l;
    while (r > start_bin && csum[static_cast<std::size_t>(r)] > upper) --r;
    int next_start_bin = start_bin;
    int next_end_bin = end_bin;
    if ((l - start_bin) > (end_bin - r)) {
      next_start_bin = l;
      alpha = next_alpha;
    } else {
      next_end_bin = r;
      beta = next_beta;
    }
    if (next_start_bin == start_bin && next_end_bin == end_bin) continue;
    const double norm = histogram_l2_error(h, dst_bins, next_start_bin, next_end_bin);
    if (norm > norm_min) break;
    norm_min = norm;
    start_bin = next_start_bin;
    end_bin = next_end_bin;
  }
  // new_min = min_val + bin_width * start_bin, new_max = min_val + bin_width * (end_bin + 1): f32.
  return {h.min() + bin_width * static_cast<float>(start_bin),
          h.min() + bin_width * static_cast<float>(end_bin + 1)};
}

}  // namespace qk
