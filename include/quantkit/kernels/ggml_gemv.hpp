// GEMV y = W x straight on ggml's block formats Q8_0, Q4_0 (blocks of 32) and Q4_K (super-blocks of 256),
// as ggml's CPU backend computes a matrix-vector product: x is quantized once per call to ggml's
// activation type and each row is a sum of integer block dot products scaled by the float16 scales.
//
// Activation rule (ggml's vec_dot_type for each weight type):
// - Q8_0 and Q4_0 weights: x -> Q8_0 blocks, ggml's quantize_row_q8_0_ref (qk::ggml::quantize_row): per 32
//   values d = amax / 127 stored as float16, q = roundf(x / d). Per block
//   y += fp16(d_w) * fp16(d_x) * sum q_w * q_x (ggml_vec_dot_q8_0_q8_0, ggml_vec_dot_q4_0_q8_0; Q4_0 codes
//   minus 8).
// - Q4_K weights: x -> Q8_K blocks, ggml's quantize_row_q8_K_ref (quantize_row_q8_k below): per 256 values
//   max = the value of largest magnitude (the first one), d = 1 / (-127 / max) as float32,
//   q = nearest_int(-127 / max * x) capped at 127, and bsums = sums of q over 16. Per super-block
//   y += fp16(d) * d_x * sum_s scale_s * sum q_w * q_x - fp16(dmin) * d_x * sum_s min_s * bsum_s
//   (ggml_vec_dot_q4_K_q8_K; the eight 6-bit scales and mins unpacked as get_scale_min_k4).
// The integer sums are exact (int32); only the per-block scaling and the sum over blocks round in float32.
// The scalar references do those float operations in ggml's order (Q4_K: eight lanes, as its generic code),
// so their bits equal ggml's *_generic dot products row by row (checked once against ggml d99724f2's C on
// 3,000 random and quantized rows per type; the tests check the bounds below, which SIMD variants share).
//
// Error bound (tests/kernels/test_ggml_gemv.cpp checks it on random and edge blocks): with w_j the weights
// as ggml's dequantize_row gives them and x8_j = d_x * q_j the quantized activations,
//   |y - sum_j w_j x_j| <= sum_j |w_j| |x_j - x8_j| + (blocks + 10) * 2^-23 * sum_j a_j (|x_j| + |x8_j|),
// a_j = |w_j| for Q8_0/Q4_0 and |fp16(d) scale q_j| + |fp16(dmin) min| for Q4_K (the float rounding of the
// block scaling, the block sum and of dequantize_row itself). The activation error per value is at most
// d_x / 2 + 127 |d_x - fp16(d_x)| for Q8_0 (about amax / 254 + amax / 2^11 of the block's largest |x|) and
// |d_x| / 2 for Q8_K (amax / 254), up to float rounding.
//
// Registered: the scalar references; AVX2 variants of Q8_0, Q4_0 and Q4_K (ggml's AVX2 dot products: exact
// int32 block sums, one fused multiply-add of the scale product per block, or per super-block for Q4_K,
// into eight float lanes); AVX-512 VNNI variants of the three (vpdpbusd on unsigned codes, the offset taken
// out per int32 lane: exact block sums, two blocks per step, one fused multiply-add per block or
// super-block, x laid out once per call).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/kernels/dispatch.hpp"

namespace qk::kernels {

// ggml's block_q8_K (ggml-common.h): the activation type of the K-quants' dot products.
struct BlockQ8K {
  float d;                                     // scale: value = d * q (negative when max < 0)
  std::int8_t qs[ggml::kSuperBlock];           // codes in -127..127
  std::int16_t bsums[ggml::kSuperBlock / 16];  // sum of the codes in each group of 16
};
static_assert(sizeof(BlockQ8K) == 4 + ggml::kSuperBlock + ggml::kSuperBlock / 16 * 2);

// x[0..n) -> n / 256 blocks at out, to the bit as ggml's quantize_row_q8_K_ref. A block whose largest
// magnitude is 0 is all zero (d = 0), as in ggml; so is one whose largest magnitude is below 127 / FLT_MAX
// (about 3.7e-37), where ggml's -127 / max overflows (undefined there). Throws qk::Error when n is not a
// multiple of 256 or an element is not finite.
void quantize_row_q8_k(const float* x, std::int64_t n, BlockQ8K* out);

// The variants take the activations already quantized (x_q: cols / 32 Q8_0 blocks, or cols / 256 Q8_K
// blocks); w holds rows * (cols / block) blocks, row by row; y gets rows values.
using GemvQ8_0Fn = void (*)(const ggml::BlockQ8_0* w, std::int64_t rows, std::int64_t cols,
                            const ggml::BlockQ8_0* x_q, float* y);
using GemvQ4_0Fn = void (*)(const ggml::BlockQ4_0* w, std::int64_t rows, std::int64_t cols,
                            const ggml::BlockQ8_0* x_q, float* y);
using GemvQ4_KFn = void (*)(const ggml::BlockQ4_K* w, std::int64_t rows, std::int64_t cols,
                            const BlockQ8K* x_q, float* y);

void gemv_q8_0_ref(const ggml::BlockQ8_0* w, std::int64_t rows, std::int64_t cols, const ggml::BlockQ8_0* x_q,
                   float* y);
void gemv_q4_0_ref(const ggml::BlockQ4_0* w, std::int64_t rows, std::int64_t cols, const ggml::BlockQ8_0* x_q,
                   float* y);
void gemv_q4_k_ref(const ggml::BlockQ4_K* w, std::int64_t rows, std::int64_t cols, const BlockQ8K* x_q,
                   float* y);

#if defined(__x86_64__) || defined(_M_X64)
void gemv_q8_0_avx2(const ggml::BlockQ8_0* w, std::int64_t rows, std::int64_t cols,
                    const ggml::BlockQ8_0* x_q, float* y);
void gemv_q4_0_avx2(const ggml::BlockQ4_0* w, std::int64_t rows, std::int64_t cols,
                    const ggml::BlockQ8_0* x_q, float* y);
void gemv_q4_k_avx2(const ggml::BlockQ4_K* w, std::int64_t rows, std::int64_t cols, const BlockQ8K* x_q,
                    float* y);
void gemv_q8_0_avx512vnni(const ggml::BlockQ8_0* w, std::int64_t rows, std::int64_t cols,
                          const ggml::BlockQ8_0* x_q, float* y);
void gemv_q4_0_avx512vnni(const ggml::BlockQ4_0* w, std::int64_t rows, std::int64_t cols,
                          const ggml::BlockQ8_0* x_q, float* y);
void gemv_q4_k_avx512vnni(const ggml::BlockQ4_K* w, std::int64_t rows, std::int64_t cols, const BlockQ8K* x_q,
                          float* y);
#endif

std::span<const KernelVariant<GemvQ8_0Fn>> gemv_q8_0_variants();
std::span<const KernelVariant<GemvQ4_0Fn>> gemv_q4_0_variants();
std::span<const KernelVariant<GemvQ4_KFn>> gemv_q4_k_variants();

// Whether gemv_ggml takes weights of this type (Q8_0, Q4_0, Q4_K).
bool has_ggml_gemv(ggml::Type type);

// The dispatched GEMV: w is rows rows of ggml::row_bytes(type, cols) bytes (a GGUF tensor's data), x has
// cols values, y gets rows. Quantizes x once (the rule above), then runs the selected variant. Throws
// qk::Error for another type, cols not a multiple of the type's block, sizes that do not match, a
// non-finite x, or (Q8_0/Q4_0) a block of x whose largest magnitude / 127 overflows float16 (>= 65520,
// where ggml's activation scale becomes infinite).
// `threads` split the rows (parallel.hpp); x is quantized once, before the split.
void gemv_ggml(ggml::Type type, std::span<const std::byte> w, std::int64_t rows, std::int64_t cols,
               std::span<const float> x, std::span<float> y, int threads = 1);

}  // namespace qk::kernels
