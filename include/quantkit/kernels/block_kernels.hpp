// Dequantize and GEMV for the NF4 and double-quantized INT4 block formats (core/block_formats.hpp):
// a scalar reference and an AVX2 variant of each (and an AVX-512 GEMV), in registries, dispatched once.
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

using DequantizeNf4Fn = void (*)(const BlockNf4* blocks, std::int64_t n, float* out);
using DequantizeQ4dqFn = void (*)(const BlockQ4DQ* blocks, std::int64_t n, float* out);
using GemvNf4Fn = void (*)(const BlockNf4* w, std::int64_t rows, std::int64_t cols, const float* x, float* y);
using GemvQ4dqFn = void (*)(const BlockQ4DQ* w, std::int64_t rows, std::int64_t cols, const float* x,
                            float* y);

void gemv_nf4_ref(const BlockNf4* w, std::int64_t rows, std::int64_t cols, const float* x, float* y);
void gemv_q4dq_ref(const BlockQ4DQ* w, std::int64_t rows, std::int64_t cols, const float* x, float* y);

std::span<const KernelVariant<DequantizeNf4Fn>> dequantize_nf4_variants();
std::span<const KernelVariant<DequantizeQ4dqFn>> dequantize_q4dq_variants();
std::span<const KernelVariant<GemvNf4Fn>> gemv_nf4_variants();
std::span<const KernelVariant<GemvQ4dqFn>> gemv_q4dq_variants();

// The dispatched variants.
std::vector<float> dequantize(std::span<const BlockNf4> blocks);
std::vector<float> dequantize(std::span<const BlockQ4DQ> blocks);
// w: rows * (cols / block) blocks, row by row; throws on sizes that do not fit.
void gemv(std::span<const BlockNf4> w, std::int64_t rows, std::int64_t cols, std::span<const float> x,
          std::span<float> y);
void gemv(std::span<const BlockQ4DQ> w, std::int64_t rows, std::int64_t cols, std::span<const float> x,
          std::span<float> y);

}  // namespace qk::kernels
