// The learnable fake-quant forward and backward loops (qat/learnable_fake_quant.hpp), compiled here so
// that the library's -ffp-contract=off holds for them whatever flags a user compiles with.
#include "quantkit/qat/learnable_fake_quant.hpp"

#include <algorithm>
#include <cmath>

namespace qk {

void fake_quantize_learnable_forward(std::span<const float> x, const ChannelLayout& layout,
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

LearnableFakeQuantGrads fake_quantize_learnable_backward(std::span<const float> x,
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
                          g.dx[k] = dy[k] * 0.0f;  // dy times the mask, as the reference: -0 for dy < 0
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

float sgd_update(float value, float learning_rate, float grad) { return value - learning_rate * grad; }

}  // namespace qk
