// Dequantize and GEMV for NF4 and the double-quantized INT4 block format (core/block_formats.hpp): a
// scalar reference and an AVX2 variant of each (and an AVX-512 GEMV), in registries, dispatched once.
// NF4 takes the quantized file's layout (packed codes, a separate scale array; io::nf4_view reads one), in
// any even group size; the SIMD variants need groups of a multiple of kNf4SimdGroup, so the dispatched
// entry points run the reference for other group sizes.
// - Dequantize: every variant gives the reference's bits (one float32 multiply per value).
// - GEMV y = W x (W: rows x cols in blocks along each row): the AVX2 and AVX-512 variants sum in another
//   order, so they agree with the reference within float32 rounding of the dot product (tests state the
//   bound).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "quantkit/core/block_formats.hpp"
#include "quantkit/kernels/dispatch.hpp"

namespace qk::kernels {

// The group sizes the NF4 SIMD variants take: a multiple of 32 (16 code bytes, one vector step).
inline constexpr std::int64_t kNf4SimdGroup = 32;

using DequantizeNf4Fn = void (*)(const std::uint8_t* codes, const float* scales, std::int64_t n,
                                 std::int64_t group_size, float* out);
using DequantizeQ4dqFn = void (*)(const BlockQ4DQ* blocks, std::int64_t n, float* out);
using GemvNf4Fn = void (*)(const std::uint8_t* codes, const float* scales, std::int64_t rows,
                           std::int64_t cols, std::int64_t group_size, const float* x, float* y);
using GemvQ4dqFn = void (*)(const BlockQ4DQ* w, std::int64_t rows, std::int64_t cols, const float* x,
                            float* y);

void gemv_nf4_ref(const std::uint8_t* codes, const float* scales, std::int64_t rows, std::int64_t cols,
                  std::int64_t group_size, const float* x, float* y);
void gemv_q4dq_ref(const BlockQ4DQ* w, std::int64_t rows, std::int64_t cols, const float* x, float* y);

std::span<const KernelVariant<DequantizeNf4Fn>> dequantize_nf4_variants();
std::span<const KernelVariant<DequantizeQ4dqFn>> dequantize_q4dq_variants();
std::span<const KernelVariant<GemvNf4Fn>> gemv_nf4_variants();
std::span<const KernelVariant<GemvQ4dqFn>> gemv_q4dq_variants();

// The dispatched variants; each checks its sizes (check_nf4 for NF4) and throws qk::Error.
std::vector<float> dequantize(const Nf4View& w);
std::vector<float> dequantize(std::span<const BlockQ4DQ> blocks);
// w: rows * (cols / block) blocks, row by row; throws on sizes that do not fit. `threads` split the rows
// (parallel.hpp); each output row is computed the same way whatever part it falls in.
void gemv(const Nf4View& w, std::span<const float> x, std::span<float> y, int threads = 1);
void gemv(std::span<const BlockQ4DQ> w, std::int64_t rows, std::int64_t cols, std::span<const float> x,
          std::span<float> y, int threads = 1);

}  // namespace qk::kernels
