// Test oracle, not installed: the scalar reference of PyTorch's dynamic int8 linear (golden README rule
// 9): per-tensor uint8 activations with reduce_range from the dynamic rule, int8 symmetric weights per
// tensor or per output channel, exact int32 accumulation, then
// y = float(acc) * (float(sa) * sw[n]) + bias[n].
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/qparams.hpp"
#include "quantkit/core/quantize.hpp"

namespace qk {

struct LinearDynamicResult {
  DynamicQParams activation;
  std::vector<std::uint8_t> activation_q;  // [batch, k]
  std::vector<std::int32_t> acc;           // [batch, n]
  std::vector<float> y;                    // [batch, n]
};

// x: [batch, k] float; weight_q: [n, k] int8; weight_scale / weight_zero_point: 1 or n entries; bias: n or
// empty.
inline LinearDynamicResult linear_dynamic_int8_ref(std::span<const float> x, std::int64_t batch,
                                                   std::int64_t k, std::span<const std::int8_t> weight_q,
                                                   std::int64_t n, std::span<const float> weight_scale,
                                                   std::span<const std::int32_t> weight_zero_point,
                                                   std::span<const float> bias) {
  if (static_cast<std::int64_t>(x.size()) != batch * k ||
      static_cast<std::int64_t>(weight_q.size()) != n * k) {
    throw Error("linear_dynamic_int8: x or weight has the wrong size");
  }
  const bool per_channel = weight_scale.size() != 1;
  if ((per_channel && static_cast<std::int64_t>(weight_scale.size()) != n) ||
      weight_zero_point.size() != weight_scale.size() ||
      (!bias.empty() && static_cast<std::int64_t>(bias.size()) != n)) {
    throw Error("linear_dynamic_int8: weight scales, zero points or bias have the wrong size");
  }
  LinearDynamicResult r;
  float lo = 0.0f, hi = 0.0f;
  if (!x.empty()) {
    lo = *std::min_element(x.begin(), x.end());
    hi = *std::max_element(x.begin(), x.end());
  }
  r.activation = choose_qparams_dynamic(lo, hi, /*is_signed=*/false, /*reduce_range=*/true);
  // Codes use the full uint8 storage range (rule 4), not the reduced one.
  const QRange storage{0, 255};
  const float inv = inverse_scale<float>(r.activation.scale);
  r.activation_q.resize(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    r.activation_q[i] =
        static_cast<std::uint8_t>(quantize_value<float>(x[i], inv, r.activation.zero_point, storage));
  }
  r.acc.assign(static_cast<std::size_t>(batch * n), 0);
  r.y.assign(static_cast<std::size_t>(batch * n), 0.0f);
  const std::int32_t za = r.activation.zero_point;
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t o = 0; o < n; ++o) {
      const std::size_t c = per_channel ? static_cast<std::size_t>(o) : 0;
      const std::int32_t zw = weight_zero_point[c];
      std::int64_t acc = 0;  // summed wide, then checked: int32 is the reference's accumulator
      for (std::int64_t j = 0; j < k; ++j) {
        acc += (static_cast<std::int32_t>(r.activation_q[static_cast<std::size_t>(b * k + j)]) - za) *
               (static_cast<std::int32_t>(weight_q[static_cast<std::size_t>(o * k + j)]) - zw);
      }
      const auto idx = static_cast<std::size_t>(b * n + o);
      if (acc < INT32_MIN || acc > INT32_MAX)
        throw Error("linear_dynamic_int8: accumulator overflows int32 (K too large)");
      r.acc[idx] = static_cast<std::int32_t>(acc);
      r.y[idx] = static_cast<float>(acc) * (r.activation.scale * weight_scale[c]) +
                 (bias.empty() ? 0.0f : bias[static_cast<std::size_t>(o)]);
    }
  }
  return r;
}

}  // namespace qk
