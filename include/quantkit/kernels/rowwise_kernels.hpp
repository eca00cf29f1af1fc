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

// Gathers whole rows of FBGEMM's fused 8-bit layout: row r sits at rows + r * row_bytes and holds dim
// uint8 codes, then its float16 scale and float16 bias. Row ids[i] goes to out + i * dim, with the same
// bits as rowwise_dequantize_u8 on that row's codes, scale and bias. The loads of the row
// kRowwiseGatherPrefetch ids ahead are started early. No range check. One call per batch, not per row:
// for a table that sits in the CPU's caches, a call, a dispatch and a scalar float16 decode per row
// cost as much as the row's arithmetic.
using RowwiseGatherFn = void (*)(const std::uint8_t* rows, std::int64_t row_bytes, const std::int64_t* ids,
                                 std::int64_t n, std::int64_t dim, float* out);
inline constexpr std::int64_t kRowwiseGatherPrefetch = 8;

void rowwise_gather_u8_ref(const std::uint8_t* rows, std::int64_t row_bytes, const std::int64_t* ids,
                           std::int64_t n, std::int64_t dim, float* out);

std::span<const KernelVariant<RowwiseDequantizeFn>> rowwise_dequantize_u8_variants();
std::span<const KernelVariant<RowwiseDequantizeFn>> rowwise_dequantize_u4_variants();
std::span<const KernelVariant<RowwiseGatherFn>> rowwise_gather_u8_variants();

// The dispatched variants (chosen once).
void rowwise_dequantize_u8(const std::uint8_t* codes, std::int64_t dim, float scale, float bias, float* out);
void rowwise_dequantize_u4(const std::uint8_t* codes, std::int64_t dim, float scale, float bias, float* out);
void rowwise_gather_u8(const std::uint8_t* rows, std::int64_t row_bytes, const std::int64_t* ids,
                       std::int64_t n, std::int64_t dim, float* out);

}  // namespace qk::kernels
