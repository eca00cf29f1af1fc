// Learnable fake quantization (LSQ-style scale and zero-point gradients), golden README rule 7, matching
// PyTorch's _fake_quantize_learnable_per_{tensor,channel}_affine including its two fused multiply-adds.
// The loops are compiled in src/qat/ (with -ffp-contract=off): a user's flags cannot fuse any other
// multiply and add of theirs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/qparams.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/core/spec.hpp"

namespace qk {

struct LearnableFakeQuantGrads {
  std::vector<float> dx;                       // per element
  std::vector<float> dscale_per_element;       // per element, before the sum
  std::vector<float> dzero_point_per_element;  // per element, before the sum
  std::vector<float> dscale;                   // per slot
  std::vector<float> dzero_point;              // per slot
};

// LSQ's gradient scale 1 / sqrt(N * qmax), N = elements per slot.
inline float lsq_grad_factor(std::int64_t elements_per_slot, QRange r) {
  return 1.0f / std::sqrt(static_cast<float>(elements_per_slot) * static_cast<float>(r.max));
}

inline void check_learnable_params(std::span<const float> scale, std::span<const float> zero_point,
                                   const ChannelLayout& layout) {
  if (static_cast<std::int64_t>(scale.size()) != layout.slots ||
      static_cast<std::int64_t>(zero_point.size()) != layout.slots) {
    throw Error("learnable fake-quant: expected one scale and zero point per slot");
  }
  for (const float s : scale) check_scale(s, "learnable scale");
  for (const float z : zero_point) {
    if (!std::isfinite(z)) throw Error("learnable zero point is not finite");
  }
}

// Forward: zero point rounded half to even and clamped, then rule 6.
void fake_quantize_learnable_forward(std::span<const float> x, const ChannelLayout& layout,
                                     std::span<const float> scale, std::span<const float> zero_point, QRange r,
                                     std::span<float> y);

// Backward. per_channel selects the zero point rule of the reference: per tensor it uses
// trunc(clamp(z + 0.5)), per channel the forward's rounded value.
LearnableFakeQuantGrads fake_quantize_learnable_backward(std::span<const float> x, std::span<const float> dy,
                                                         const ChannelLayout& layout, std::span<const float> scale,
                                                         std::span<const float> zero_point, QRange r,
                                                         float grad_factor, bool per_channel);

// value - learning_rate * grad, never fused into one fma (an SGD step on a learnable scale or zero point).
float sgd_update(float value, float learning_rate, float grad);

}  // namespace qk
