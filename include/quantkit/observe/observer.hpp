// Calibration observers: minmax, moving-average, percentile, entropy, mse and histogram (PyTorch's
// HistogramObserver), per tensor, per channel or per group, fed batch by batch in constant memory, with a
// state that can be saved and (except moving-average and histogram) merged.
//
// Every observer keeps the running min/max and a canonical histogram per slot (observe/histogram.hpp),
// so every method can report the fraction it clips. The histogram method also keeps PyTorch's own
// histogram per slot (observe/torch_histogram.hpp), whose bins follow torch's and the batch order. The method
// picks a clip range per slot; the scale and zero point always come from qparams_from_minmax (golden README
// rule 2), the same code path as the plain min/max observer.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/observe/clip_search.hpp"
#include "quantkit/observe/histogram.hpp"
#include "quantkit/observe/minmax.hpp"
#include "quantkit/observe/torch_histogram.hpp"

namespace qk {

enum class CalibMethod { kMinMax, kMovingAverage, kPercentile, kEntropy, kMse, kHistogram };

const char* to_string(CalibMethod m);
// "minmax", "moving-average", "percentile", "entropy", "mse" or "histogram"; throws naming the choices
// otherwise.
CalibMethod parse_calib_method(const std::string& name);

struct ObserverConfig {
  CalibMethod method = CalibMethod::kMinMax;
  QuantSpec spec;
  float averaging_constant = 0.01f;    // moving-average
  double percentile = 99.99;           // percentile, in (0, 100]
  int bins = Histogram::kDefaultBins;  // also the histogram method's torch bins (PyTorch's default 2048)

  void validate() const;
};

// What calibration found for one slot (the whole tensor, a channel or a group).
struct SlotCalibration {
  float min = 0.0f;  // observed (moving-average: the averaged min and max)
  float max = 0.0f;
  ClipRange clip;  // the range the scale and zero point cover (always contains 0)
  float scale = 1.0f;
  std::int32_t zero_point = 0;
  std::uint64_t count = 0;
  double clipped_fraction = 0.0;  // of the observed values, read from the histogram
  double bin_width = 0.0;         // the histogram's resolution (the percentile error bound)
};

struct CalibrationResult {
  ObserverConfig config;
  Shape shape;  // of the first batch
  std::int64_t batches = 0;
  std::uint64_t count = 0;
  std::vector<SlotCalibration> slots;
  QuantParams params;
  double clipped_fraction = 0.0;  // over all slots
};

// Everything an observer knows; enough to resume it or merge it with another (calibration files store it).
struct ObserverState {
  ObserverConfig config;
  Shape shape;
  std::int64_t batches = 0;
  std::vector<float> min, max;                   // running min/max per slot
  std::vector<float> avg_min, avg_max;           // moving-average state per slot (moving-average only)
  std::vector<Histogram> histograms;             // per slot
  std::vector<TorchHistogram> torch_histograms;  // per slot (histogram only)
};

class Observer {
 public:
  explicit Observer(ObserverConfig config);

  const ObserverConfig& config() const { return state_.config; }
  bool empty() const { return state_.batches == 0; }
  std::int64_t batches() const { return state_.batches; }
  const Shape& shape() const { return state_.shape; }
  std::int64_t slots() const { return static_cast<std::int64_t>(state_.min.size()); }
  const Histogram& histogram(std::int64_t slot) const {
    return state_.histograms.at(static_cast<std::size_t>(slot));
  }

  // One batch. Batches of one tensor may differ in their first (batch) dimension only; per-group specs
  // need identical shapes. Throws on NaN/Inf (naming the count and first index), on an empty batch and
  // on a shape that does not match the earlier batches.
  template <QuantFloat T>
  void observe(TensorView<const T> x);

  // Adds another observer's data, as if its batches had been observed here. Needs the same
  // configuration and compatible shapes. The min/max and the histogram are exact (the histogram grid is
  // canonical); moving-average and histogram state depend on batch order and cannot be merged (throws).
  void merge(const Observer& other);

  CalibrationResult result() const;

  const ObserverState& state() const { return state_; }
  static Observer from_state(ObserverState state);

 private:
  void check_shape(const Shape& shape) const;
  void update_range(std::span<const float> mins, std::span<const float> maxs);

  ObserverState state_;
};

// --- template implementation ---------------------------------------------------------------------------

namespace detail {

// Adds a run of values to a histogram; half and bfloat16 go through a small float buffer.
template <QuantFloat T>
void histogram_add(Histogram& h, std::span<const T> x, float lo, float hi) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    h.add(x, lo, hi);
  } else {
    float buf[1024];
    for (std::size_t i = 0; i < x.size(); i += 1024) {
      const std::size_t n = std::min<std::size_t>(1024, x.size() - i);
      for (std::size_t k = 0; k < n; ++k) buf[k] = static_cast<float>(x[i + k]);
      h.add(std::span<const float>(buf, n), lo, hi);
    }
  }
}

}  // namespace detail

template <QuantFloat T>
void Observer::observe(TensorView<const T> x) {
  if (x.numel() == 0) throw Error("observer input " + shape_string(x.shape()) + " has no values");
  check_shape(x.shape());
  std::int64_t slots = state_.batches == 0 ? -1 : this->slots();
  std::vector<float> mins, maxs;
  detail::batch_minmax<T>(x, state_.config.spec, slots, mins, maxs);  // also rejects NaN/Inf
  const ChannelLayout layout = channel_layout(x.shape(), state_.config.spec);
  if (state_.histograms.empty())
    state_.histograms.assign(static_cast<std::size_t>(slots), Histogram(state_.config.bins));
  const std::span<const T> flat = x.flat();
  const bool torch_histogram = state_.config.method == CalibMethod::kHistogram;
  // PyTorch histograms one slot's batch at once (a re-binning needs all of it), so gather each slot.
  std::vector<std::vector<float>> slot_values(torch_histogram ? static_cast<std::size_t>(slots) : 0);
  for_each_slot_run(layout, 0, x.numel(), [&](std::int64_t slot, std::int64_t begin, std::int64_t len) {
    const auto s = static_cast<std::size_t>(slot);
    const auto run = flat.subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(len));
    detail::histogram_add<T>(state_.histograms[s], run, mins[s], maxs[s]);
    if (torch_histogram)
      for (const T v : run) slot_values[s].push_back(static_cast<float>(v));
  });
  if (torch_histogram) {
    if (state_.torch_histograms.empty())
      state_.torch_histograms.assign(static_cast<std::size_t>(slots), TorchHistogram(state_.config.bins));
    for (std::size_t s = 0; s < slot_values.size(); ++s)
      state_.torch_histograms[s].add(slot_values[s], mins[s], maxs[s]);
  }
  if (state_.batches == 0) state_.shape = x.shape();
  update_range(mins, maxs);
  ++state_.batches;
}

}  // namespace qk
