// Block formats for inference weights, as plain structs (ggml's block_q4_0 is the model):
//
// - NF4 (QLoRA, Dettmers et al. 2023): 64 weights share a float32 absmax; each weight is the index of
//   the nearest of 16 levels, the normal-distribution quantiles below (kNf4Levels), of w / absmax.
//   Dequantized: level[code] * absmax. 4.5 bits per weight.
// - Q4DQ, double-quantized INT4 (the K-quant idea): a super-block of 256 weights holds 8 groups of 32.
//   Each group's scale amax/7.5 (golden rule 2, symmetric) is itself stored in 8 bits against the
//   super-block's float32 unit (scale_g = scales[g] * super_scale, rounded up so that it never
//   shrinks), and the codes are made with that stored scale: code = clamp(rint(w / scale_g), -8, 7).
//   Every weight then lies within half a step of its dequantized value. 4.375 bits per weight.
//
// Codes are packed two per byte, element 2k in the low nibble of byte k; INT4 codes are stored + 8.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace qk {

// The NF4 levels: normalised quantiles of N(0, 1), 8 on the positive side and 7 on the negative side,
// plus an exact 0 (QLoRA's create_normal_map with offset 0.9677083; the values bitsandbytes ships).
inline constexpr std::array<float, 16> kNf4Levels = {-1.0f,
                                                     -0.6961928009986877f,
                                                     -0.5250730514526367f,
                                                     -0.39491748809814453f,
                                                     -0.28444138169288635f,
                                                     -0.18477343022823334f,
                                                     -0.09105003625154495f,
                                                     0.0f,
                                                     0.07958029955625534f,
                                                     0.16093020141124725f,
                                                     0.24611230194568634f,
                                                     0.33791524171829224f,
                                                     0.44070982933044434f,
                                                     0.5626170039176941f,
                                                     0.7229568362236023f,
                                                     1.0f};

struct BlockNf4 {
  static constexpr std::int64_t kWeights = 64;
  float absmax;                      // the block's largest |w|; 0 for an all-zero block
  std::uint8_t codes[kWeights / 2];  // level indices, two per byte, low nibble first
};
static_assert(sizeof(BlockNf4) == 36, "NF4 block: 4 + 32 bytes");

struct BlockQ4DQ {
  static constexpr std::int64_t kWeights = 256;
  static constexpr std::int64_t kGroup = 32;
  float super_scale;                       // unit of the group scales
  std::uint8_t scales[kWeights / kGroup];  // group scale = scales[g] * super_scale
  std::uint8_t codes[kWeights / 2];        // code + 8, two per byte, low nibble first
};
static_assert(sizeof(BlockQ4DQ) == 140, "Q4DQ block: 4 + 8 + 128 bytes");

// The NF4 code of a value already divided by the block's absmax (in [-1, 1]): the nearest level; a value
// exactly halfway between two levels takes the lower one.
std::uint8_t nf4_code(float normalized);

// Whole rows: n must be a multiple of the block's weight count. Throws qk::Error on NaN/Inf or a bad n.
std::vector<BlockNf4> quantize_nf4(std::span<const float> x);
std::vector<BlockQ4DQ> quantize_q4dq(std::span<const float> x);
// The scalar references (src/core/block_formats.cpp); the dispatched (SIMD) versions and the GEMVs are
// kernels (kernels/block_kernels.hpp).
void dequantize_nf4_ref(const BlockNf4* blocks, std::int64_t n, float* out);
void dequantize_q4dq_ref(const BlockQ4DQ* blocks, std::int64_t n, float* out);

inline double bits_per_weight_nf4() { return 8.0 * sizeof(BlockNf4) / BlockNf4::kWeights; }
inline double bits_per_weight_q4dq() { return 8.0 * sizeof(BlockQ4DQ) / BlockQ4DQ::kWeights; }

}  // namespace qk
