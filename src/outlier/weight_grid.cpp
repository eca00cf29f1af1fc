// Slot-by-slot RTN of a linear layer, with the importance-weighted clip search.
#include "weight_grid.hpp"

#include <algorithm>
#include <cmath>

#include "quantkit/core/error.hpp"
#include "quantkit/core/qparams.hpp"
#include "quantkit/core/quantize.hpp"

namespace qk::detail {

SlotGrid slot_grid(std::span<const float> values, const QuantSpec& spec, double clip) {
  float lo = 0, hi = 0;
  for (const float v : values) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const QParams p = choose_qparams(static_cast<float>(lo * clip), static_cast<float>(hi * clip), spec);
  return {p.scale, p.zero_point};
}

std::int8_t quantize_to_grid(float w, const SlotGrid& g, QRange r) {
  return static_cast<std::int8_t>(quantize_value<float>(w, inverse_scale<float>(g.scale), g.zero_point, r));
}

QuantizedLinear rtn_linear(std::span<const float> w, std::int64_t out, std::int64_t in, const QuantSpec& spec,
                           const ClipSearch& search) {
  QuantizedLinear q;
  q.out = out;
  q.in = in;
  q.params.spec = spec;
  q.codes.resize(w.size());
  q.dequantized.resize(w.size());
  const QRange r = spec.range();
  const std::int64_t width = spec.granularity == Granularity::kPerGroup ? spec.group_size : in;
  if (search.hessian && (search.hessian->rows() != in || search.hessian->cols() != in))
    throw Error("clip search: the Hessian is not " + std::to_string(in) + " x " + std::to_string(in));
  Eigen::VectorXd d(width);  // one slot's error, reused across clip factors
  for (std::int64_t row = 0; row < out; ++row) {
    for (std::int64_t start = 0; start < in; start += width) {
      const std::size_t base = static_cast<std::size_t>(row * in + start);
      const std::span<const float> slot = w.subspan(base, static_cast<std::size_t>(width));
      SlotGrid best = slot_grid(slot, spec);
      if (search.active()) {
        double best_err = INFINITY;
        for (int k = 0; k <= search.grid; ++k) {
          const double clip = 1.0 - (1.0 - search.min_clip) * k / std::max(1, search.grid);
          const SlotGrid g = slot_grid(slot, spec, clip);
          for (std::size_t j = 0; j < slot.size(); ++j) {
            const float back =
                dequantize_value<float>(quantize_to_grid(slot[j], g, r), g.scale, g.zero_point);
            d(static_cast<Eigen::Index>(j)) = static_cast<double>(slot[j]) - back;
          }
          double err = 0;
          if (search.hessian) {
            err = d.dot(search.hessian->block(start, start, width, width) * d);
          } else {
            for (std::size_t j = 0; j < slot.size(); ++j)
              err += search.importance[static_cast<std::size_t>(start) + j] *
                     d(static_cast<Eigen::Index>(j)) * d(static_cast<Eigen::Index>(j));
          }
          if (err < best_err) {
            best_err = err;
            best = g;
          }
        }
      }
      q.params.scale.push_back(best.scale);
      q.params.zero_point.push_back(best.zero_point);
      for (std::size_t j = 0; j < slot.size(); ++j) {
        q.codes[base + j] = quantize_to_grid(slot[j], best, r);
        q.dequantized[base + j] = dequantize_value<float>(q.codes[base + j], best.scale, best.zero_point);
      }
    }
  }
  return q;
}

}  // namespace qk::detail
