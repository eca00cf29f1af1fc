// FP8 storage: OCP 8-bit floating point E4M3 ("FN": no infinity, one NaN pattern per sign, max 448) and
// E5M2 (IEEE-like: infinities, NaNs, max 57344), as used by H100/MI300 and by PyTorch's float8_e4m3fn /
// float8_e5m2. Conversion from float rounds to nearest even and saturates: anything beyond the largest
// finite value, infinities included, becomes ±max (OCP's "satfinite" mode, what quantization wants: an
// outlier clips instead of turning into Inf or NaN). NaN stays NaN (E4M3 0x7F, E5M2 0x7E, sign kept).
// Subnormals are produced and read exactly.
//
// Scaled FP8 quantization: x ≈ fp8(x / scale) * scale with scale = amax / max_finite per tensor or per
// channel, so the largest magnitude lands on the largest code.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/spec.hpp"

namespace qk {

enum class Fp8Format { kE4M3, kE5M2 };

struct Fp8Traits {
  int exponent_bits;
  int mantissa_bits;
  int bias;
  float max_finite;
  std::uint8_t nan_code;  // the NaN pattern written for NaN input (sign bit added separately)
};

constexpr Fp8Traits fp8_traits(Fp8Format f) {
  return f == Fp8Format::kE4M3 ? Fp8Traits{4, 3, 7, 448.0f, 0x7f} : Fp8Traits{5, 2, 15, 57344.0f, 0x7e};
}

inline const char* to_string(Fp8Format f) { return f == Fp8Format::kE4M3 ? "fp8-e4m3" : "fp8-e5m2"; }

// float -> FP8 bits: saturating, round to nearest even.
inline std::uint8_t float_to_fp8(float value, Fp8Format format) {
  const Fp8Traits t = fp8_traits(format);
  const std::uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  if (std::isnan(value)) return static_cast<std::uint8_t>(sign | t.nan_code);
  // Clamp first: max_finite is representable, so rounding a clamped value can never pass it.
  const float a = std::fmin(std::fabs(value), t.max_finite);
  const int min_normal_exp = 1 - t.bias;
  int e = 0;
  std::frexp(a, &e);  // a = f * 2^e with f in [0.5, 1): the unbiased exponent of a is e - 1
  --e;
  if (a == 0.0f || e < min_normal_exp) {
    // Subnormal (or zero): a multiple of 2^(min_normal_exp - M). Scaling by a power of two is exact, and
    // the code may round up to 2^M, which is exactly the bit pattern of the smallest normal.
    const float code = std::nearbyint(std::ldexp(a, t.mantissa_bits - min_normal_exp));
    return static_cast<std::uint8_t>(sign | static_cast<std::uint8_t>(code));
  }
  float q = std::nearbyint(std::ldexp(a, t.mantissa_bits - e));  // in [2^M, 2^(M+1)]
  if (q == std::ldexp(1.0f, t.mantissa_bits + 1)) {              // rounded up into the next binade
    q = std::ldexp(1.0f, t.mantissa_bits);
    ++e;
  }
  const auto mantissa = static_cast<std::uint32_t>(q) - (1u << t.mantissa_bits);
  const auto exponent = static_cast<std::uint32_t>(e + t.bias);
  return static_cast<std::uint8_t>(sign | (exponent << t.mantissa_bits) | mantissa);
}

// FP8 bits -> float (exact: every FP8 value is a float).
inline float fp8_to_float(std::uint8_t bits, Fp8Format format) {
  const Fp8Traits t = fp8_traits(format);
  const bool negative = (bits & 0x80) != 0;
  const std::uint32_t exponent = (bits >> t.mantissa_bits) & ((1u << t.exponent_bits) - 1);
  const std::uint32_t mantissa = bits & ((1u << t.mantissa_bits) - 1);
  const std::uint32_t max_exponent = (1u << t.exponent_bits) - 1;
  float v;
  if (format == Fp8Format::kE4M3 && exponent == max_exponent && mantissa == 0x7) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (format == Fp8Format::kE5M2 && exponent == max_exponent) {
    v = mantissa == 0 ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    v = std::ldexp(static_cast<float>(mantissa), 1 - t.bias - t.mantissa_bits);
  } else {
    v = std::ldexp(static_cast<float>(mantissa + (1u << t.mantissa_bits)),
                   static_cast<int>(exponent) - t.bias - t.mantissa_bits);
  }
  return negative ? -v : v;
}

// Scaled FP8 quantization of a tensor whose elements map to parameter slots by `layout` (one slot per
// tensor or per channel; core/spec.hpp): scale[c] = amax_c / max_finite (1 for an all-zero slot).
struct Fp8Quantized {
  Fp8Format format = Fp8Format::kE4M3;
  std::vector<std::uint8_t> codes;
  std::vector<float> scale;  // per slot
};

inline Fp8Quantized quantize_fp8(std::span<const float> x, const ChannelLayout& layout, Fp8Format format) {
  if (static_cast<std::int64_t>(x.size()) != layout.numel)
    throw Error("fp8: input size differs from its layout");
  Fp8Quantized q;
  q.format = format;
  q.scale.assign(static_cast<std::size_t>(layout.slots), 0.0f);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]))
      throw Error("fp8 quantization input has a non-finite value at index " + std::to_string(i));
    float& s = q.scale[static_cast<std::size_t>(layout.slot_of(static_cast<std::int64_t>(i)))];
    s = std::fmax(s, std::fabs(x[i]));
  }
  const float max_finite = fp8_traits(format).max_finite;
  // A subnormal amax would give a scale that underflows to 0: keep it at least the smallest float.
  for (float& s : q.scale)
    s = s > 0.0f ? std::fmax(s / max_finite, std::numeric_limits<float>::denorm_min()) : 1.0f;
  q.codes.resize(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float s = q.scale[static_cast<std::size_t>(layout.slot_of(static_cast<std::int64_t>(i)))];
    q.codes[i] = float_to_fp8(x[i] / s, format);
  }
  return q;
}

inline std::vector<float> dequantize_fp8(const Fp8Quantized& q, const ChannelLayout& layout) {
  if (static_cast<std::int64_t>(q.codes.size()) != layout.numel ||
      static_cast<std::int64_t>(q.scale.size()) != layout.slots)
    throw Error("fp8: codes or scales do not match the layout");
  std::vector<float> out(q.codes.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = fp8_to_float(q.codes[i], q.format) *
             q.scale[static_cast<std::size_t>(layout.slot_of(static_cast<std::int64_t>(i)))];
  return out;
}

}  // namespace qk
