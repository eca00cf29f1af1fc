// Streaming min/max and moving-average min/max observers (golden README rules 2 and 3), per tensor,
// per channel or per group, fed batch by batch. Non-finite input is an error, never a silent range.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/quantize_tensor.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/core/tensor_view.hpp"

namespace qk {

namespace detail {

// Per-slot min/max of one batch.
template <QuantFloat T>
void batch_minmax(TensorView<const T> x, const QuantSpec& spec, std::int64_t& slots, std::vector<float>& mins,
                  std::vector<float>& maxs) {
  const ChannelLayout layout = channel_layout(x.shape(), spec);
  if (slots >= 0 && layout.slots != slots) {
    throw Error("observer: batch has " + std::to_string(layout.slots) +
                " channels/groups, earlier batches had " + std::to_string(slots));
  }
  slots = layout.slots;
  mins.assign(static_cast<std::size_t>(slots), std::numeric_limits<float>::infinity());
  maxs.assign(static_cast<std::size_t>(slots), -std::numeric_limits<float>::infinity());
  reject_nonfinite<T>(x.flat(), x.shape(), "observer input");
  kernels::observe_minmax<T>(x.flat(), layout, 0, mins, maxs);
}

}  // namespace detail

// Rule 3's update of a moving-average bound: three float32 operations, d = cur - m; d = c * d; m = m + d,
// not one fma. Defined in src/ (compiled with -ffp-contract=off), so a user's flags cannot fuse them.
float moving_average_update(float m, float cur, float averaging_constant);

// Running minimum and maximum over every batch seen (PyTorch MinMaxObserver / PerChannelMinMaxObserver).
class MinMaxObserver {
 public:
  explicit MinMaxObserver(QuantSpec spec) : spec_(std::move(spec)) { spec_.validate(); }

  template <QuantFloat T>
  void observe(TensorView<const T> x) {
    std::vector<float> mins, maxs;
    detail::batch_minmax<T>(x, spec_, slots_, mins, maxs);
    if (min_.empty()) {
      min_ = mins;
      max_ = maxs;
      return;
    }
    for (std::size_t i = 0; i < mins.size(); ++i) {
      min_[i] = std::min(min_[i], mins[i]);
      max_[i] = std::max(max_[i], maxs[i]);
    }
  }

  bool empty() const { return min_.empty(); }
  std::span<const float> min_vals() const { return min_; }
  std::span<const float> max_vals() const { return max_; }
  const QuantSpec& spec() const { return spec_; }
  QuantParams qparams() const {
    if (empty()) throw Error("observer has seen no data");
    return qparams_from_minmax(min_, max_, spec_);
  }

 private:
  QuantSpec spec_;
  std::int64_t slots_ = -1;
  std::vector<float> min_, max_;
};

// Exponential moving average of each batch's min and max (PyTorch MovingAverageMinMaxObserver). The
// update is three float32 operations, d = cur - m; d = c * d; m = m + d (rule 3), not one fma.
class MovingAverageMinMaxObserver {
 public:
  explicit MovingAverageMinMaxObserver(QuantSpec spec, float averaging_constant = 0.01f)
      : spec_(std::move(spec)), averaging_constant_(averaging_constant) {
    spec_.validate();
    if (!(averaging_constant > 0.0f && averaging_constant <= 1.0f)) {
      throw Error("averaging constant must lie in (0, 1]");
    }
  }

  template <QuantFloat T>
  void observe(TensorView<const T> x) {
    std::vector<float> mins, maxs;
    detail::batch_minmax<T>(x, spec_, slots_, mins, maxs);
    if (min_.empty()) {
      min_ = mins;
      max_ = maxs;
      return;
    }
    for (std::size_t i = 0; i < mins.size(); ++i) {
      if (mins[i] > maxs[i]) continue;  // an empty slot in this batch carries no information
      if (min_[i] > max_[i]) {          // no earlier data for this slot: start from this batch
        min_[i] = mins[i];
        max_[i] = maxs[i];
        continue;
      }
      min_[i] = update(min_[i], mins[i]);
      max_[i] = update(max_[i], maxs[i]);
    }
  }

  bool empty() const { return min_.empty(); }
  std::span<const float> min_vals() const { return min_; }
  std::span<const float> max_vals() const { return max_; }
  QuantParams qparams() const {
    if (empty()) throw Error("observer has seen no data");
    return qparams_from_minmax(min_, max_, spec_);
  }

 private:
  float update(float m, float cur) const { return moving_average_update(m, cur, averaging_constant_); }

  QuantSpec spec_;
  float averaging_constant_;
  std::int64_t slots_ = -1;
  std::vector<float> min_, max_;
};

}  // namespace qk
