// PyTorch's HistogramObserver (torch.ao.quantization, 1.13 semantics): its float32 histogram over the
// observed [min, max], re-binned when a batch widens the range, and its L2 search for a clip range
// (_non_linear_param_search). Mirrors torch's float32 and Python-float arithmetic step by step, so the
// scale and zero point match the golden observer_histogram cases bit for bit.
//
// Unlike observe/histogram.hpp this histogram depends on the order of the batches (each re-binning
// spreads old counts uniformly over a finer grid), so observers that use it cannot be merged.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "quantkit/observe/clip_search.hpp"

namespace qk {

class TorchHistogram {
 public:
  static constexpr int kDefaultUpsampleRate = 128;

  explicit TorchHistogram(int bins = 2048, int upsample_rate = kDefaultUpsampleRate);

  int bins() const { return static_cast<int>(counts_.size()); }
  int upsample_rate() const { return upsample_rate_; }
  // min > max until the first batch, as in torch (min_val = inf, max_val = -inf).
  bool empty() const { return !(min_ <= max_); }
  // The observer's range (torch's min_val/max_val): the first batch's min/max, widened by later batches
  // (the upper end can exceed the data's max: torch rounds the widened range to a whole number of old
  // bins). The counts were binned over this range truncated toward zero, as PyTorch 1.13 does.
  float min() const { return min_; }
  float max() const { return max_; }
  // Float32 counts (whole numbers until a re-binning spreads old counts fractionally).
  std::span<const float> counts() const { return counts_; }

  // One batch (HistogramObserver.forward) whose finite min and max the caller already knows.
  void add(std::span<const float> x, float lo, float hi);

  // Restores a saved state; validates it.
  static TorchHistogram from_state(int bins, int upsample_rate, float min, float max,
                                   std::vector<float> counts);

 private:
  void reset(std::span<const float> x, float lo, float hi);

  std::vector<float> counts_;
  int upsample_rate_;
  float min_ = std::numeric_limits<float>::infinity();
  float max_ = -std::numeric_limits<float>::infinity();
};

// torch.histc(x, bins, min=lo, max=hi) on float32 (ATen's histc edge rules: lo == hi means the data's
// range, an empty range widens by 1): bin = trunc(float32((x - lo) * bins) / (hi - lo)), the value hi in
// the last bin, values outside [lo, hi] dropped.
std::vector<float> torch_histc(std::span<const float> x, int bins, double lo, double hi);

// _non_linear_param_search followed by nothing else: the [new_min, new_max] torch passes to
// _calculate_qparams (golden README rule 2). dst_bins is torch's dst_nbins, 2^(bits of the storage
// dtype): 256 for 8-bit storage whatever reduce_range or an explicit range says.
ClipRange histogram_l2_search(const TorchHistogram& h, std::int64_t dst_bins);

// _compute_quantization_error: the approximate L2 error of quantizing the histogram with dst_bins
// levels spread over bins [start_bin, end_bin]. Exposed for tests.
double histogram_l2_error(const TorchHistogram& h, std::int64_t dst_bins, int start_bin, int end_bin);

}  // namespace qk
