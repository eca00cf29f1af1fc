// Grid search of each slot's clipping ratio by the squared error of its codes (ptq/weight_clip.hpp).
#include "quantkit/ptq/weight_clip.hpp"

#include <limits>

namespace qk {

QuantParams mse_clipped_params(TensorView<const float> x, const QuantSpec& spec,
                               const WeightClipOptions& options) {
  if (options.steps < 1 || !(options.min_ratio > 0 && options.min_ratio <= 1))
    throw Error("weight clip search: steps must be positive and min_ratio in (0, 1]");
  const ChannelLayout layout = channel_layout(x.shape(), spec);
  const auto slots = static_cast<std::size_t>(layout.slots);
  std::vector<float> mins(slots, std::numeric_limits<float>::infinity());
  std::vector<float> maxs(slots, -std::numeric_limits<float>::infinity());
  reject_nonfinite<float>(x.flat(), x.shape(), "weight clip search input");
  observe_minmax<float>(x.flat(), layout, 0, mins, maxs);
  QuantParams best = qparams_from_minmax(mins, maxs, spec);
  std::vector<double> best_error(slots, std::numeric_limits<double>::infinity());
  const QRange range = spec.range();
  const std::span<const float> flat = x.flat();
  std::vector<float> lo(slots), hi(slots), inv(slots);
  std::vector<double> error(slots);
  for (int k = 0; k <= options.steps; ++k) {
    const double ratio = 1.0 - (1.0 - options.min_ratio) * k / options.steps;
    for (std::size_t s = 0; s < slots; ++s) {
      lo[s] = static_cast<float>(mins[s] * ratio);
      hi[s] = static_cast<float>(maxs[s] * ratio);
    }
    const QuantParams p = qparams_from_minmax(lo, hi, spec);
    for (std::size_t s = 0; s < slots; ++s) inv[s] = inverse_scale<float>(p.scale[s]);
    std::fill(error.begin(), error.end(), 0.0);
    for (std::int64_t i = 0; i < layout.numel; ++i) {
      const auto s = static_cast<std::size_t>(layout.slot_of(i));
      const float v = flat[static_cast<std::size_t>(i)];
      const std::int64_t q = quantize_value<float>(v, inv[s], p.zero_point[s], range);
      const double e = double{v} - dequantize_value<float>(q, p.scale[s], p.zero_point[s]);
      error[s] += e * e;
    }
    for (std::size_t s = 0; s < slots; ++s)
      if (error[s] < best_error[s]) {  // ties keep the wider range (r = 1 first)
        best_error[s] = error[s];
        best.scale[s] = p.scale[s];
        best.zero_point[s] = p.zero_point[s];
      }
  }
  return best;
}

}  // namespace qk
