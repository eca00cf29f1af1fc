// Dequantize one row-wise quantized embedding row (FBGEMM's fused N-bit layout, see embed/rowwise.hpp)
// into float32: out[d] = float(code_d) * scale + bias, a multiply then an add (never fused), so every
// variant gives the same bits. 4-bit codes are packed two per byte, low nibble first.
#pragma once

#include <cstdint>
#include <span>

#include "quantkit/kernels/dispatch.hpp"

namespace qk::kernels {

using RowwiseDequantizeFn = void (*)(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                                     float* out);

void rowwise_dequantize_u8_ref(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                               float* out);
void rowwise_dequantize_u4_ref(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                               float* out);

std::span<const KernelVariant<RowwiseDequantizeFn>> rowwise_dequantize_u8_variants();
std::span<const KernelVariant<RowwiseDequantizeFn>> rowwise_dequantize_u4_variants();

// The dispatched variants (chosen once).
void rowwise_dequantize_u8(const std::uint8_t* codes, std::int64_t dim, float scale, float bias, float* out);
void rowwise_dequantize_u4(const std::uint8_t* codes, std::int64_t dim, float scale, float bias, float* out);

}  // namespace qk::kernels
