// The per-ISA kernel variants, private to the library: each is defined in <op>_<format>_<isa>.cpp,
// compiled with that ISA's flags only, and reached from outside through its registry entry
// (registries.cpp), which says the ISA it needs. Signatures are the families' Fn types.
#pragma once

#include <cstdint>

#include "quantkit/core/block_formats.hpp"
#include "quantkit/kernels/packed_weights.hpp"
#include "quantkit/kernels/quantize_kernels.hpp"
#include "quantkit/kernels/quantized_activations.hpp"

namespace qk::kernels {

// Eigen for the baseline ISA (SSE2 on x86-64): the FP32 fallback on every CPU.
void gemm_fp32_eigen(const float* x, std::int64_t batch, const Fp32Weights& w, std::int64_t row_begin,
                     std::int64_t row_end, float* y);

#if defined(__x86_64__) || defined(_M_X64)
// AVX2 + FMA + F16C (Isa::kAvx2).
void quantize_f32_i8_avx2(const float* x, std::int64_t n, QuantizeRun run, std::int8_t* out);
void quantize_f32_u8_avx2(const float* x, std::int64_t n, QuantizeRun run, std::uint8_t* out);
void dequantize_i8_f32_avx2(const std::int8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                            float* out);
void dequantize_u8_f32_avx2(const std::uint8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                            float* out);
void minmax_f32_avx2(const float* x, std::int64_t n, float* lo, float* hi);
void f32_to_f16_avx2(const float* x, std::int64_t n, std::uint16_t* out);
void f16_to_f32_avx2(const std::uint16_t* x, std::int64_t n, float* out);
void f32_to_bf16_avx2(const float* x, std::int64_t n, std::uint16_t* out);
void bf16_to_f32_avx2(const std::uint16_t* x, std::int64_t n, float* out);
void rowwise_dequantize_u8_avx2(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                                float* out);
void rowwise_dequantize_u4_avx2(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                                float* out);
void rowwise_gather_u8_avx2(const std::uint8_t* rows, std::int64_t row_bytes, const std::int64_t* ids,
                            std::int64_t n, std::int64_t dim, float* out);
void dequantize_e4m3_avx2(const std::uint8_t* codes, std::int64_t n, float scale, float* out);
void dequantize_e5m2_avx2(const std::uint8_t* codes, std::int64_t n, float scale, float* out);
void dequantize_nf4_avx2(const std::uint8_t* codes, const float* scales, std::int64_t n,
                         std::int64_t group_size, float* out);
void dequantize_q4dq_avx2(const BlockQ4DQ* blocks, std::int64_t n, float* out);
void gemv_nf4_avx2(const std::uint8_t* codes, const float* scales, std::int64_t rows, std::int64_t cols,
                   std::int64_t group_size, const float* x, float* y);
void gemv_q4dq_avx2(const BlockQ4DQ* w, std::int64_t rows, std::int64_t cols, const float* x, float* y);
void gemm_fp32_eigen_avx2(const float* x, std::int64_t batch, const Fp32Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y);
void gemm_fp16_avx2(const float* x, std::int64_t batch, const Fp16Weights& w, std::int64_t row_begin,
                    std::int64_t row_end, float* y);
void gemm_int8_avx2(const QuantizedActivations& x, const Int8Weights& w, std::int64_t row_begin,
                    std::int64_t row_end, float* y);
void gemm_int8_float_avx2(const float* x, std::int64_t batch, const Int8Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y);
void gemm_int4_avx2(const QuantizedActivations& x, const Int4Weights& w, std::int64_t row_begin,
                    std::int64_t row_end, float* y);

// AVX-512 F/BW/VL + VNNI (Isa::kAvx512Vnni).
void rowwise_gather_u8_avx512(const std::uint8_t* rows, std::int64_t row_bytes, const std::int64_t* ids,
                              std::int64_t n, std::int64_t dim, float* out);
void gemv_nf4_avx512(const std::uint8_t* codes, const float* scales, std::int64_t rows, std::int64_t cols,
                     std::int64_t group_size, const float* x, float* y);
void gemv_q4dq_avx512(const BlockQ4DQ* w, std::int64_t rows, std::int64_t cols, const float* x, float* y);
void gemm_fp16_avx512(const float* x, std::int64_t batch, const Fp16Weights& w, std::int64_t row_begin,
                      std::int64_t row_end, float* y);
void gemm_int8_avx512vnni(const QuantizedActivations& x, const Int8Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y);
void gemm_int4_avx512vnni(const QuantizedActivations& x, const Int4Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y);
#endif

}  // namespace qk::kernels
