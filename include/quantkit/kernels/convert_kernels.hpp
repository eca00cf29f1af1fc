// float32 <-> IEEE binary16 and bfloat16 for runs of values, round to nearest even (core/half.hpp's
// rules: NaN stays NaN, overflow becomes Inf, half subnormals are kept). Every variant gives the same bits.
#pragma once

#include <cstdint>
#include <span>

#include "quantkit/kernels/dispatch.hpp"

namespace qk::kernels {

using F32ToBits16Fn = void (*)(const float* x, std::int64_t n, std::uint16_t* out);
using Bits16ToF32Fn = void (*)(const std::uint16_t* x, std::int64_t n, float* out);

void f32_to_f16_ref(const float* x, std::int64_t n, std::uint16_t* out);
void f16_to_f32_ref(const std::uint16_t* x, std::int64_t n, float* out);
void f32_to_bf16_ref(const float* x, std::int64_t n, std::uint16_t* out);
void bf16_to_f32_ref(const std::uint16_t* x, std::int64_t n, float* out);

std::span<const KernelVariant<F32ToBits16Fn>> f32_to_f16_variants();
std::span<const KernelVariant<Bits16ToF32Fn>> f16_to_f32_variants();
std::span<const KernelVariant<F32ToBits16Fn>> f32_to_bf16_variants();
std::span<const KernelVariant<Bits16ToF32Fn>> bf16_to_f32_variants();

void f32_to_f16(const float* x, std::int64_t n, std::uint16_t* out);
void f16_to_f32(const std::uint16_t* x, std::int64_t n, float* out);
void f32_to_bf16(const float* x, std::int64_t n, std::uint16_t* out);
void bf16_to_f32(const std::uint16_t* x, std::int64_t n, float* out);

}  // namespace qk::kernels
