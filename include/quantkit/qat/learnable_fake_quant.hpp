// Learnable fake quantization (LSQ-style scale and zero-point gradients), golden README rule 7, matching
// PyTorch's _fake_quantize_learnable_per_{tensor,channel}_affine including its two fused multiply-adds.
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
inline void fake_quantize_learnable_forward(std::span<const float> x, const ChannelLayout& layout,
                                            std::span<const float> scale, std::span<const float> zero_point,
                                            QRange r, std::span<float> y) {
  check_learnable_params(scale, zero_point, layout);
  for_each_slot_run(
      layout, 0, static_cast<std::int64_t>(x.size()), [&](std::int64_t slot, std::int64_t b, std::int64_t n) {
        const float s = scale[static_cast<std::size_t>(slot)];
        const float zf = std::clamp(std::nearbyint(zero_point[static_cast<std::size_t>(slot)]),
                                    static_cast<float>(r.min), static_cast<float>(r.max));
        const float inv = 1.0f / s;
        for (std::int64_t i = b; i < b + n; ++i) {
          const auto k = static_cast<std::size_t>(i);
          y[k] = fake_quantize_value<float>(x[k], inv, s, static_cast<std::int32_t>(zf), r).value;
        }
      });
}

// Backward. per_channel selects the zero point rule of the reference: per tensor it uses
// trunc(clamp(z + 0.5)), per channel the forward's rounded value.
inline LearnableFakeQuantGrads fake_quantize_learnable_backward(std::span<const float> x,
                                                                std::span<const float> dy,
                                                                const ChannelLayout& layout,
                                                                std::span<const float> scale,
                                                                std::span<const float> zero_point, QRange r,
                                                                float grad_factor, bool per_channel) {
  check_learnable_params(scale, zero_point, layout);
  if (dy.size() != x.size()) throw Error("learnable fake-quant: dy and x differ in size");
  LearnableFakeQuantGrads g;
  g.dx.resize(x.size());
  g.dscale_per_element.resize(x.size());
  g.dzero_point_per_element.resize(x.size());
  g.dscale.assign(static_cast<std::size_t>(layout.slots), 0.0f);
  g.dzero_point.assign(static_cast<std::size_t>(layout.slots), 0.0f);
  const auto qmin = static_cast<float>(r.min);
  const auto qmax = static_cast<float>(r.max);
  for_each_slot_run(layout, 0, static_cast<std::int64_t>(x.size()),
                    [&](std::int64_t slot, std::int64_t b, std::int64_t n) {
                      const auto c = static_cast<std::size_t>(slot);
                      const float s = scale[c];
                      const float z = zero_point[c];
                      const float zb = per_channel ? std::clamp(std::nearbyint(z), qmin, qmax)
                                                   : std::trunc(std::clamp(z + 0.5f, qmin, qmax));
                      const float inv = 1.0f / s;
                      double sum_scale = 0.0;
                      double sum_zero = 0.0;
                      for (std::int64_t i = b; i < b + n; ++i) {
                        const auto k = static_cast<std::size_t>(i);
                        // The zero point is added before rounding, in one fused operation (the reference's
                        // fma).
                        const float code = std::nearbyint(std::fma(x[k], inv, zb));
                        const bool inside = code >= qmin && code <= qmax;
                        float dscale;
                        float dzero;
                        if (inside) {
                          g.dx[k] = dy[k];
                          dscale = ((dy[k] * std::fma(code - zb, s, -x[k])) * inv) * grad_factor;
                          dzero = 0.0f;
                        } else {
                          g.dx[k] = 0.0f;
                          dscale = (dy[k] * (code < qmin ? qmin - zb : qmax - zb)) * grad_factor;
                          dzero = ((dy[k] * -1.0f) * s) * grad_factor;
                        }
                        g.dscale_per_element[k] = dscale;
                        g.dzero_point_per_element[k] = dzero;
                        sum_scale += dscale;
                        sum_zero += dzero;
                      }
                      g.dscale[c] += static_cast<float>(sum_scale);
                      g.dzero_point[c] += static_cast<float>(sum_zero);
                    });
  return g;
}

}  // namespace qk
