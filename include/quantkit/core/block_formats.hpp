// 4-bit formats for inference weights:
//
// - NF4 (QLoRA, Dettmers et al. 2023): a group of weights along a row (64 by default, QLoRA's block)
//   shares a float32 scale, its absmax; each weight is the index of the nearest of 16 levels, the
//   normal-distribution quantiles below (kNf4Levels), of w / absmax. Dequantized: level[code] * scale.
//   The layout is the quantized file's (io/qfile.hpp, element "nf4", per group): the codes of the whole
//   matrix packed two per byte in C order, and the scales as a separate [rows, cols / group] array, so a
//   file's members feed the GEMV (kernels/block_kernels.hpp) as they are. 4.5 bits per weight at g64.
// - Q4DQ, a plain struct per block (ggml's block_q4_0 is the model):
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
#include <string>
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

// QLoRA's block: the NF4 group size unless a caller says otherwise (ptq/defaults.hpp uses it too).
inline constexpr std::int64_t kNf4Block = 64;

// NF4 weights of a rows x cols matrix, groups of group_size along each row (cols a multiple of it). codes:
// rows * cols / 2 bytes, element 2k in the low nibble of byte k, C order; scales: rows * cols / group_size
// float32, the group's absmax (1 for an all-zero group, as the codebook rule of core/element_format.hpp).
struct Nf4View {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t group_size = kNf4Block;
  std::span<const std::uint8_t> codes;
  std::span<const float> scales;
};

// Owning NF4 weights (quantize_nf4's result).
struct Nf4Weights {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t group_size = kNf4Block;
  std::vector<std::uint8_t> codes;
  std::vector<float> scales;
  Nf4View view() const { return Nf4View{rows, cols, group_size, codes, scales}; }
};

// Throws qk::Error (naming `what`) unless the view's sizes agree: rows, cols >= 0, group_size even and
// positive, cols a multiple of it, and the codes and scales exactly as long as the shape needs.
void check_nf4(const Nf4View& w, const std::string& what);

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

// x: a row-major matrix of `cols` columns (x.size() a multiple of cols; cols a multiple of group_size,
// which is even). Bit for bit what a quantized file with element nf4 and the same groups holds. Throws
// qk::Error on NaN/Inf or sizes that do not fit.
Nf4Weights quantize_nf4(std::span<const float> x, std::int64_t cols, std::int64_t group_size = kNf4Block);
// Whole rows: n must be a multiple of the block's weight count. Throws qk::Error on NaN/Inf or a bad n.
std::vector<BlockQ4DQ> quantize_q4dq(std::span<const float> x);
// The scalar references (src/core/block_formats.cpp); the dispatched (SIMD) versions and the GEMVs are
// kernels (kernels/block_kernels.hpp). NF4: the first n values (n a multiple of group_size) of packed
// codes with one scale per group_size values.
void dequantize_nf4_ref(const std::uint8_t* codes, const float* scales, std::int64_t n,
                        std::int64_t group_size, float* out);
void dequantize_q4dq_ref(const BlockQ4DQ* blocks, std::int64_t n, float* out);

// Code bits plus one float32 scale per group.
inline double bits_per_weight_nf4(std::int64_t group_size = kNf4Block) {
  return 4.0 + 32.0 / static_cast<double>(group_size);
}
inline double bits_per_weight_q4dq() { return 8.0 * sizeof(BlockQ4DQ) / BlockQ4DQ::kWeights; }

}  // namespace qk
