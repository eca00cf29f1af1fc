// The GEMV/GEMM micro-kernels behind gemm.hpp, one registry per format, so tests and benchmarks can run
// every variant. A kernel computes the output columns [row_begin, row_end) of Y [batch, w.rows] for
// every row of X. Inputs are already padded to the weights' stride (x rows of `w.stride` floats for the
// float-activation kernels), so kernels have no column tail.
#pragma once

#include <cstdint>
#include <span>

#include "quantkit/kernels/dispatch.hpp"
#include "quantkit/kernels/packed_weights.hpp"
#include "quantkit/kernels/quantized_activations.hpp"

namespace qk::kernels {

// x: [batch, w.cols] for FP32 (unpadded), [batch, w.stride] for FP16 and INT8-float.
using GemmFp32Fn = void (*)(const float* x, std::int64_t batch, const Fp32Weights& w, std::int64_t row_begin,
                            std::int64_t row_end, float* y);
using GemmFp16Fn = void (*)(const float* x, std::int64_t batch, const Fp16Weights& w, std::int64_t row_begin,
                            std::int64_t row_end, float* y);
using GemmInt8Fn = void (*)(const QuantizedActivations& x, const Int8Weights& w, std::int64_t row_begin,
                            std::int64_t row_end, float* y);
using GemmInt8FloatFn = void (*)(const float* x, std::int64_t batch, const Int8Weights& w,
                                 std::int64_t row_begin, std::int64_t row_end, float* y);
using GemmInt4Fn = void (*)(const QuantizedActivations& x, const Int4Weights& w, std::int64_t row_begin,
                            std::int64_t row_end, float* y);

// Scalar references: the definition of each result (the registries' first entries are the variants
// dispatch falls back to; for FP32 that is Eigen, not this loop).
void gemm_fp32_ref(const float* x, std::int64_t batch, const Fp32Weights& w, std::int64_t row_begin,
                   std::int64_t row_end, float* y);
void gemm_fp16_ref(const float* x, std::int64_t batch, const Fp16Weights& w, std::int64_t row_begin,
                   std::int64_t row_end, float* y);
void gemm_int8_ref(const QuantizedActivations& x, const Int8Weights& w, std::int64_t row_begin,
                   std::int64_t row_end, float* y);
void gemm_int8_float_ref(const float* x, std::int64_t batch, const Int8Weights& w, std::int64_t row_begin,
                         std::int64_t row_end, float* y);
void gemm_int4_ref(const QuantizedActivations& x, const Int4Weights& w, std::int64_t row_begin,
                   std::int64_t row_end, float* y);

std::span<const KernelVariant<GemmFp32Fn>> gemm_fp32_variants();
std::span<const KernelVariant<GemmFp16Fn>> gemm_fp16_variants();
std::span<const KernelVariant<GemmInt8Fn>> gemm_int8_variants();
std::span<const KernelVariant<GemmInt8FloatFn>> gemm_int8_float_variants();
std::span<const KernelVariant<GemmInt4Fn>> gemm_int4_variants();

}  // namespace qk::kernels
