// Quantize a run of float32 values that share one scale and zero point into int8 or uint8 codes,
// exactly as golden rule 5 (and core/quantize.hpp's quantize_value): q = clamp(rint(x * inv) + zp),
// NaN -> qmin. Scalar reference and SIMD variants produce identical codes.
#pragma once

#include <cstdint>
#include <span>

#include "quantkit/kernels/dispatch.hpp"

namespace qk::kernels {

// Clamping range in the rounded domain: the codes are clamp(rint(x * inv), lo, hi) + zero_point with
// lo = qmin - zero_point, hi = qmax - zero_point.
struct QuantizeRun {
  float inv_scale;
  std::int32_t zero_point;
  std::int32_t qmin;
  std::int32_t qmax;
};

using QuantizeToI8Fn = void (*)(const float* x, std::int64_t n, QuantizeRun run, std::int8_t* out);
using QuantizeToU8Fn = void (*)(const float* x, std::int64_t n, QuantizeRun run, std::uint8_t* out);

void quantize_f32_i8_ref(const float* x, std::int64_t n, QuantizeRun run, std::int8_t* out);
void quantize_f32_u8_ref(const float* x, std::int64_t n, QuantizeRun run, std::uint8_t* out);

std::span<const KernelVariant<QuantizeToI8Fn>> quantize_i8_variants();
std::span<const KernelVariant<QuantizeToU8Fn>> quantize_u8_variants();

// The dispatched kernels (chosen once).
void quantize_f32_i8(const float* x, std::int64_t n, QuantizeRun run, std::int8_t* out);
void quantize_f32_u8(const float* x, std::int64_t n, QuantizeRun run, std::uint8_t* out);

}  // namespace qk::kernels
