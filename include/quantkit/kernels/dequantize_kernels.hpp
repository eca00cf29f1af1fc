// Dequantize a run of int8 or uint8 codes that share one scale and zero point into float32:
// x = float(q - zero_point) * scale, one float32 multiply (golden rule 5). Variants give identical results.
#pragma once

#include <cstdint>
#include <span>

#include "quantkit/kernels/dispatch.hpp"

namespace qk::kernels {

using DequantizeI8Fn = void (*)(const std::int8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                                float* out);
using DequantizeU8Fn = void (*)(const std::uint8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                                float* out);

void dequantize_i8_f32_ref(const std::int8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                           float* out);
void dequantize_u8_f32_ref(const std::uint8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                           float* out);

std::span<const KernelVariant<DequantizeI8Fn>> dequantize_i8_variants();
std::span<const KernelVariant<DequantizeU8Fn>> dequantize_u8_variants();

void dequantize_i8_f32(const std::int8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                       float* out);
void dequantize_u8_f32(const std::uint8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                       float* out);

}  // namespace qk::kernels
