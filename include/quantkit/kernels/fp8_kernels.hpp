// Dequantize of scaled FP8 codes (core/fp8.hpp): out[i] = fp8_to_float(codes[i]) * scale, for E4M3 and
// E5M2, a scalar reference and an AVX2 variant of each, in registries, dispatched once. Every variant
// gives the reference's bits (the decode is exact, then one float32 multiply); NaN codes give NaN.
#pragma once

#include <cstdint>
#include <span>

#include "quantkit/core/fp8.hpp"
#include "quantkit/kernels/dispatch.hpp"

namespace qk::kernels {

using DequantizeFp8Fn = void (*)(const std::uint8_t* codes, std::int64_t n, float scale, float* out);

void dequantize_e4m3_ref(const std::uint8_t* codes, std::int64_t n, float scale, float* out);
void dequantize_e5m2_ref(const std::uint8_t* codes, std::int64_t n, float scale, float* out);

std::span<const KernelVariant<DequantizeFp8Fn>> dequantize_fp8_variants(Fp8Format format);

// The dispatched variant; codes and out must have the same size.
void dequantize_fp8(std::span<const std::uint8_t> codes, Fp8Format format, float scale, std::span<float> out);

}  // namespace qk::kernels
