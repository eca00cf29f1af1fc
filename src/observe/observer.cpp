// The calibration observer's non-template parts: configuration, merging, results.
#include "quantkit/observe/observer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace qk {

const char* to_string(CalibMethod m) {
  switch (m) {
    case CalibMethod::kMinMax:
      return "minmax";
    case CalibMethod::kMovingAverage:
      return "moving-average";
    case CalibMethod::kPercentile:
      return "percentile";
    case CalibMethod::kEntropy:
      return "entropy";
    case CalibMethod::kMse:
      return "mse";
    case CalibMethod::kHistogram:
      return "histogram";
  }
  return "?";
}

CalibMethod parse_calib_method(const std::string& name) {
  for (const CalibMethod m : {CalibMethod::kMinMax, CalibMethod::kMovingAverage, CalibMethod::kPercentile,
                              CalibMethod::kEntropy, CalibMethod::kMse, CalibMethod::kHistogram}) {
    if (name == to_string(m)) return m;
  }
  throw Error("unknown calibration method '" + name +
              "' (choose minmax, moving-average, percentile, entropy, mse or histogram)");
}

void ObserverConfig::validate() const {
  spec.validate();
  if (!(averaging_constant > 0.0f && averaging_constant <= 1.0f))
    throw Error("averaging constant must lie in (0, 1], got " + std::to_string(averaging_constant));
  if (!(percentile > 0.0 && percentile <= 100.0))
    throw Error("percentile must lie in (0, 100], got " + std::to_string(percentile));
  Histogram{bins};  // validates the bin count
}

namespace {

bool same_config(const ObserverConfig& a, const ObserverConfig& b) {
  const QuantSpec& s = a.spec;
  const QuantSpec& t = b.spec;
  return a.method == b.method && a.averaging_constant == b.averaging_constant &&
         a.percentile == b.percentile && a.bins == b.bins && s.range() == t.range() &&
         s.is_signed == t.is_signed && s.scheme == t.scheme && s.reduce_range == t.reduce_range &&
         s.granularity == t.granularity && (s.granularity != Granularity::kPerChannel || s.axis == t.axis) &&
         (s.granularity != Granularity::kPerGroup || s.group_size == t.group_size);
}

}  // namespace

Observer::Observer(ObserverConfig config) {
  config.validate();
  state_.config = std::move(config);
}

void Observer::check_shape(const Shape& shape) const {
  if (state_.batches == 0) return;
  const Shape& first = state_.shape;
  bool ok = shape.size() == first.size();
  const bool exact = state_.config.spec.granularity == Granularity::kPerGroup;
  for (std::size_t i = 0; ok && i < shape.size(); ++i) {
    if (shape[i] != first[i] && (exact || i != 0)) ok = false;
  }
  if (!ok) {
    throw Error("batch shape " + shape_string(shape) + " does not match the earlier batches' " +
                shape_string(first) +
                (exact ? " (per-group calibration needs identical shapes)"
                       : " (only the first dimension may differ)"));
  }
}

void Observer::update_range(std::span<const float> mins, std::span<const float> maxs) {
  const float c = state_.config.averaging_constant;
  const bool average = state_.config.method == CalibMethod::kMovingAverage;
  if (state_.min.empty()) {
    state_.min.assign(mins.begin(), mins.end());
    state_.max.assign(maxs.begin(), maxs.end());
    if (average) {
      state_.avg_min = state_.min;
      state_.avg_max = state_.max;
    }
    return;
  }
  for (std::size_t i = 0; i < mins.size(); ++i) {
    state_.min[i] = std::min(state_.min[i], mins[i]);
    state_.max[i] = std::max(state_.max[i], maxs[i]);
    if (average) {
      state_.avg_min[i] = moving_average_update(state_.avg_min[i], mins[i], c);
      state_.avg_max[i] = moving_average_update(state_.avg_max[i], maxs[i], c);
    }
  }
}

void Observer::merge(const Observer& other) {
  if (!same_config(state_.config, other.state_.config)) {
    throw Error(
        "cannot merge calibrations with different settings (method, bits, scheme, granularity, bins or "
        "percentile)");
  }
  if (other.empty()) return;
  if (state_.config.method == CalibMethod::kMovingAverage) {
    throw Error(
        "moving-average calibrations cannot be merged: the average depends on the order of the batches "
        "(calibrate in one run, or use minmax or a histogram method)");
  }
  if (state_.config.method == CalibMethod::kHistogram) {
    throw Error(
        "histogram calibrations cannot be merged: PyTorch's histogram is re-binned batch by batch, so it "
        "depends on the order of the batches (calibrate in one run, or use mse for a mergeable L2 search)");
  }
  if (empty()) {
    state_ = other.state_;
    return;
  }
  check_shape(other.state_.shape);
  if (other.slots() != slots()) {
    throw Error("cannot merge calibrations with " + std::to_string(slots()) + " and " +
                std::to_string(other.slots()) + " channels/groups");
  }
  for (std::size_t i = 0; i < state_.min.size(); ++i) {
    state_.min[i] = std::min(state_.min[i], other.state_.min[i]);
    state_.max[i] = std::max(state_.max[i], other.state_.max[i]);
    state_.histograms[i].merge(other.state_.histograms[i]);
  }
  state_.batches += other.state_.batches;
}

CalibrationResult Observer::result() const {
  if (empty()) throw Error("observer has seen no data");
  CalibrationResult r;
  r.config = state_.config;
  r.shape = state_.shape;
  r.batches = state_.batches;
  const QuantSpec& spec = state_.config.spec;
  const bool average = state_.config.method == CalibMethod::kMovingAverage;
  std::vector<float> lo(state_.min.size()), hi(state_.min.size());
  r.slots.resize(state_.min.size());
  for (std::size_t i = 0; i < state_.min.size(); ++i) {
    const Histogram& h = state_.histograms[i];
    SlotCalibration& s = r.slots[i];
    s.min = average ? state_.avg_min[i] : state_.min[i];
    s.max = average ? state_.avg_max[i] : state_.max[i];
    s.count = h.total();
    s.bin_width = h.bin_width();
    switch (state_.config.method) {
      case CalibMethod::kMinMax:
        s.clip = minmax_clip(h);
        break;
      case CalibMethod::kMovingAverage:
        s.clip = {std::min(s.min, 0.0f), std::max(s.max, 0.0f)};
        break;
      case CalibMethod::kPercentile:
        s.clip = percentile_clip(h, state_.config.percentile, spec);
        break;
      case CalibMethod::kEntropy:
        s.clip = entropy_clip(h, spec);
        break;
      case CalibMethod::kMse:
        s.clip = mse_clip(h, spec);
        break;
      case CalibMethod::kHistogram: {
        // torch's dst_nbins is 2^(bits of the dtype): 256 for 8-bit storage, even with reduce_range.
        const ClipRange c =
            histogram_l2_search(state_.torch_histograms[i], std::int64_t{1} << spec.storage_bits());
        s.clip = {std::min(c.lo, 0.0f), std::max(c.hi, 0.0f)};  // rule 2 widens to 0 anyway
        break;
      }
    }
    lo[i] = s.clip.lo;
    hi[i] = s.clip.hi;
  }
  r.params = qparams_from_minmax(lo, hi, spec);
  const QRange range = spec.range();
  double clipped = 0.0;
  for (std::size_t i = 0; i < r.slots.size(); ++i) {
    SlotCalibration& s = r.slots[i];
    s.scale = r.params.scale[i];
    s.zero_point = r.params.zero_point[i];
    s.clipped_fraction = clipped_fraction(state_.histograms[i], {s.scale, s.zero_point}, range);
    r.count += s.count;
    clipped += s.clipped_fraction * static_cast<double>(s.count);
  }
  r.clipped_fraction = r.count ? clipped / static_cast<double>(r.count) : 0.0;
  return r;
}

Observer Observer::from_state(ObserverState state) {
  state.config.validate();
  const std::size_t slots = state.min.size();
  const bool average = state.config.method == CalibMethod::kMovingAverage;
  if (state.batches < 0) throw Error("observer state: negative batch count");
  if (state.batches == 0) {
    if (slots != 0 || !state.histograms.empty() || !state.torch_histograms.empty())
      throw Error("observer state: data without batches");
  } else {
    if (slots == 0 || state.max.size() != slots || state.histograms.size() != slots ||
        (average && (state.avg_min.size() != slots || state.avg_max.size() != slots))) {
      throw Error("observer state: per-slot arrays differ in length");
    }
    for (std::size_t i = 0; i < slots; ++i) {
      const Histogram& h = state.histograms[i];
      if (h.bins() != state.config.bins)
        throw Error("observer state: histogram bin count differs from the config");
      if (h.empty() || h.min() != state.min[i] || h.max() != state.max[i]) {
        throw Error("observer state: slot " + std::to_string(i) + "'s histogram does not match its min/max");
      }
      if (state.config.method == CalibMethod::kHistogram &&
          (state.torch_histograms.size() != slots || state.torch_histograms[i].bins() != state.config.bins ||
           state.torch_histograms[i].empty())) {
        throw Error("observer state: slot " + std::to_string(i) + " has no PyTorch histogram of " +
                    std::to_string(state.config.bins) + " bins");
      }
      if (average && !(std::isfinite(state.avg_min[i]) && std::isfinite(state.avg_max[i]) &&
                       state.avg_min[i] <= state.avg_max[i])) {
        throw Error("observer state: slot " + std::to_string(i) + "'s moving average is not a range");
      }
    }
    if (channel_layout(state.shape, state.config.spec).slots != static_cast<std::int64_t>(slots)) {
      throw Error("observer state: " + std::to_string(slots) + " slots do not fit shape " +
                  shape_string(state.shape));
    }
  }
  Observer o(state.config);
  o.state_ = std::move(state);
  return o;
}

}  // namespace qk
