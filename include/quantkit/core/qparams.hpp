// Scale and zero point from an observed range: the min/max rule (golden README rule 2) and PyTorch's
// dynamic activation rule (rule 4). All other observers end here too, so every method shares one rule.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/core/spec.hpp"

namespace qk {

// PyTorch's torch.finfo(torch.float32).eps, the floor of every observed scale.
inline constexpr float kScaleEps = 1.1920928955078125e-07f;

struct QParams {
  float scale = 1.0f;
  std::int32_t zero_point = 0;
};

// Throws unless the scale is finite and positive and its float32 inverse is finite (golden rule 10).
// The full range rule (RangeRule::kFull) also makes negative scales: allow_negative admits them.
inline void check_scale(float scale, const std::string& where = "scale", bool allow_negative = false) {
  const bool sign_ok = scale > 0.0f || (allow_negative && scale < 0.0f);
  if (!(std::isfinite(scale) && sign_ok) || !std::isfinite(1.0f / scale)) {
    throw Error(where + " " + std::to_string(scale) + " is not usable: it must be finite and " +
                (allow_negative ? "non-zero" : "positive") + " with a finite inverse");
  }
}

// A scale as the spec stores it: float16 scales are rounded to nearest even; one beyond float16's range
// throws, and one that would round to zero becomes the smallest float16 of its sign (never reached from an
// observed range: kScaleEps is a float16 subnormal).
inline float stored_scale(float scale, const QuantSpec& spec) {
  if (spec.scale_dtype == ScaleDType::kFloat32) return scale;
  const float h = half_bits_to_float(float_to_half_bits(scale));
  if (!std::isfinite(h))
    throw Error("scale " + std::to_string(scale) + " exceeds float16's range (65504); store float32 scales");
  if (h == 0.0f) return std::copysign(half_bits_to_float(1), scale);
  return h;
}

// Rule 2. Arithmetic is float32, one rounding per operation, as in PyTorch's observers.
inline QParams choose_qparams(float min_val, float max_val, const QuantSpec& spec) {
  if (!std::isfinite(min_val) || !std::isfinite(max_val)) {
    throw Error("observed range [" + std::to_string(min_val) + ", " + std::to_string(max_val) +
                "] is not finite in float32");
  }
  if (min_val > max_val) throw Error("observed min is greater than observed max");
  const QRange r = spec.range();
  const float min_neg = std::min(min_val, 0.0f);
  const float max_pos = std::max(max_val, 0.0f);
  QParams p;
  if (spec.scheme == Scheme::kAffine) {
    p.scale = stored_scale(std::max((max_pos - min_neg) / static_cast<float>(r.max - r.min), kScaleEps), spec);
    const float shift = std::nearbyint(min_neg / p.scale);
    const double zp = std::clamp(static_cast<double>(r.min) - static_cast<double>(shift),
                                 static_cast<double>(r.min), static_cast<double>(r.max));
    p.zero_point = static_cast<std::int32_t>(zp);
  } else if (spec.range_rule == RangeRule::kFull) {
    // ggml's Q4_0 rule: the value of largest magnitude, with its sign, maps to qmin exactly.
    const float m = -min_neg >= max_pos ? min_neg : max_pos;
    p.scale = m / static_cast<float>(r.min);
    if (std::fabs(p.scale) < kScaleEps) p.scale = kScaleEps;
    p.scale = stored_scale(p.scale, spec);
    p.zero_point = 0;
  } else {
    const float amax = std::max(-min_neg, max_pos);
    // The divisor is (qmax - qmin) / 2 exactly: 127.5 for int8, 7.5 for int4.
    p.scale = stored_scale(std::max(amax / (static_cast<float>(r.max - r.min) / 2.0f), kScaleEps), spec);
    if (spec.is_signed) {
      p.zero_point = 0;
    } else if (spec.is_default_uint8()) {
      p.zero_point = 128;
    } else {
      p.zero_point = static_cast<std::int32_t>((r.min + r.max) / 2);  // both >= 0 here: floor
    }
  }
  if (!std::isfinite(p.scale)) throw Error("observed range overflows the scale");
  return p;
}

// Rule 4: PyTorch's dynamic quantization parameters (quantize_dynamic / fbgemm), computed in double.
struct DynamicQParams {
  double scale_f64 = 0.1;
  float scale = 0.1f;
  std::int32_t zero_point = 0;
  QRange range;
};

inline QRange dynamic_range(bool is_signed, bool reduce_range) {
  QRange r = is_signed ? QRange{-128, 127} : QRange{0, 255};
  if (reduce_range) r = {r.min / 2, r.max / 2};  // truncating halves: [0,127] or [-64,63]
  return r;
}

inline DynamicQParams choose_qparams_dynamic(float x_min, float x_max, bool is_signed, bool reduce_range) {
  if (!std::isfinite(x_min) || !std::isfinite(x_max)) throw Error("dynamic range is not finite");
  DynamicQParams out;
  out.range = dynamic_range(is_signed, reduce_range);
  const double qmin = static_cast<double>(out.range.min);
  const double qmax = static_cast<double>(out.range.max);
  double min = std::min(static_cast<double>(x_min), 0.0);
  double max = std::max(static_cast<double>(x_max), 0.0);
  double scale = (max - min) / (qmax - qmin);
  if (static_cast<float>(scale) == 0.0f || std::isinf(1.0f / static_cast<float>(scale))) scale = 0.1;
  const double small = static_cast<double>(6.1e-5f);  // PyTorch's SMALL_SCALE_THRESHOLD as float32
  if (scale < small) {
    const double old_scale = scale;
    if (min == 0.0) {
      max = small * (qmax - qmin);
    } else if (max == 0.0) {
      min = -small * (qmax - qmin);
    } else {
      const float amplifier = static_cast<float>(small / static_cast<float>(old_scale));
      min = static_cast<float>(min * amplifier);
      max = static_cast<float>(max * amplifier);
    }
    scale = small;
  }
  const double zero_point_from_min = qmin - min / scale;
  const double zero_point_from_max = qmax - max / scale;
  const double error_from_min = std::abs(qmin) - std::abs(min / scale);
  const double error_from_max = std::abs(qmax) - std::abs(max / scale);
  const double initial = error_from_min < error_from_max ? zero_point_from_min : zero_point_from_max;
  std::int64_t zero_point;
  if (initial < qmin) {
    zero_point = out.range.min;
  } else if (initial > qmax) {
    zero_point = out.range.max;
  } else {
    zero_point = static_cast<std::int64_t>(std::nearbyint(initial));
  }
  out.scale_f64 = scale;
  out.scale = static_cast<float>(scale);
  out.zero_point = static_cast<std::int32_t>(zero_point);
  return out;
}

}  // namespace qk
