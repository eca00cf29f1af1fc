// ggml's block quantization formats (llama.cpp, GGUF), bit-compatible with ggml: the block structs of
// ggml-common.h, ggml's type ids, and the reference quantizers (quantize_row_*_ref) and dequantizers
// (dequantize_row_*) of ggml-quants.c, reproduced to the bit (tests/data/ggml holds ggml's own output).
//
// A row of n weights is n / block_weights blocks laid end to end, as in a GGUF tensor's row.
// Q4_0..Q8_0: blocks of 32 with a float16 scale d (and a float16 minimum m for the _1 types).
// K-quants: super-blocks of 256 whose sub-block scales (and minimums) are quantized against float16
// super-scales d (and dmin).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace qk::ggml {

// ggml's enum ggml_type (ggml.h): the numbers are GGUF's tensor type ids.
enum class Type : std::uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kBF16 = 30,
};

// A type's row in the table: ggml's name (ggml_type_name), weights and bytes per block (ggml_blck_size,
// ggml_type_size), and what this library can do with it.
struct TypeTraits {
  Type type;
  std::string_view name;
  std::int64_t block_weights;
  std::int64_t block_bytes;
  bool can_quantize;    // quantize_row supports it
  bool can_dequantize;  // dequantize_row supports it
};

// Every type above, in id order.
std::span<const TypeTraits> types();
// The table row of a type; throws qk::Error for a value outside the enum.
const TypeTraits& traits(Type type);
// The type with ggml's name ("q4_0", "q4_K", "f16", ...); nullopt for an unknown name.
std::optional<Type> type_from_name(std::string_view name);
// Bytes of a row of n weights; throws qk::Error (naming the type) unless n >= 0 is a multiple of its block.
std::int64_t row_bytes(Type type, std::int64_t n);

// x[0..n) -> row_bytes(type, n) bytes at out, exactly as ggml's quantize_row_<type>_ref (F32, F16, BF16:
// plain conversion, round to nearest even). Types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (the K-quants: ggml's quantize_row_q*_K_ref, without importance weights).
// Throws qk::Error (naming the type) for another type, an n that is not a multiple of the block size, or a
// non-finite input (ggml's behaviour there is undefined).
void quantize_row(Type type, const float* x, std::int64_t n, std::byte* out);
// The same with importance weights, as llama.cpp's --imatrix quantizes: importance null is the overload
// above; otherwise importance[0..n) holds one finite weight per column of the row (llama.cpp's imatrix entry
// for the tensor: per input column, the mean square of its activations, so >= 0; the same vector for every
// row), and the bytes are ggml's quantize_<type>(x, out, 1, n, importance), i.e. its
// quantize_row_<type>_impl, for Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K. F32, F16, BF16 and
// Q8_0 ignore the importance, as ggml does. Those nine types are never the reference output with an
// importance vector, not even an all-ones one: ggml then searches the scale by weighted least squares
// (weights importance[j] * sqrt(sigma2 + x[j]^2), sigma2 the row's or super-block's mean square; Q6_K:
// importance[j] alone). Throws qk::Error as above, and for a non-finite importance element.
void quantize_row(Type type, const float* x, std::int64_t n, std::byte* out, const float* importance);
// row_bytes(type, n) bytes at in -> y[0..n), exactly as ggml's dequantize_row_<type>. Types: F32, F16,
// BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. Throws qk::Error as quantize_row.
void dequantize_row(Type type, const std::byte* in, std::int64_t n, float* y);

inline constexpr std::int64_t kBlock = 32;        // QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0
inline constexpr std::int64_t kSuperBlock = 256;  // QK_K
inline constexpr std::int64_t kScaleBytesK = 12;  // K_SCALE_SIZE: 8 six-bit scales and 8 six-bit mins

// The block structs, field for field as ggml-common.h; a float16 is its bits (qk::float_to_half_bits).
// Codes of the 32-weight blocks: weight j in the low nibble of qs[j], weight j + 16 in the high nibble;
// the 5-bit types keep bit 4 of weight j in bit j of the little-endian qh.
struct BlockQ4_0 {
  std::uint16_t d;              // scale: weight = (code - 8) * d
  std::uint8_t qs[kBlock / 2];  // 4-bit codes
};
struct BlockQ4_1 {
  std::uint16_t d;              // scale: weight = code * d + m
  std::uint16_t m;              // minimum
  std::uint8_t qs[kBlock / 2];  // 4-bit codes
};
struct BlockQ5_0 {
  std::uint16_t d;              // scale: weight = (code - 16) * d
  std::uint8_t qh[4];           // bit 4 of each code
  std::uint8_t qs[kBlock / 2];  // low 4 bits of each code
};
struct BlockQ5_1 {
  std::uint16_t d;              // scale: weight = code * d + m
  std::uint16_t m;              // minimum
  std::uint8_t qh[4];           // bit 4 of each code
  std::uint8_t qs[kBlock / 2];  // low 4 bits of each code
};
struct BlockQ8_0 {
  std::uint16_t d;         // scale: weight = code * d
  std::int8_t qs[kBlock];  // codes
};
// 16 sub-blocks of 16: weight = d * (scales & 15) * code - dmin * (scales >> 4). 2.625 bits per weight.
struct BlockQ2_K {
  std::uint8_t scales[kSuperBlock / 16];  // 4-bit scale (low) and 4-bit min (high) per sub-block
  std::uint8_t qs[kSuperBlock / 4];       // 2-bit codes
  std::uint16_t d;                        // super-scale of the scales
  std::uint16_t dmin;                     // super-scale of the mins
};
// 16 sub-blocks of 16: weight = d * (scale - 32) * (code - 4). 3.4375 bits per weight.
struct BlockQ3_K {
  std::uint8_t hmask[kSuperBlock / 8];  // bit 2 of each code
  std::uint8_t qs[kSuperBlock / 4];     // low 2 bits of each code
  std::uint8_t scales[12];              // 16 six-bit scales, packed
  std::uint16_t d;                      // super-scale
};
// 8 sub-blocks of 32: weight = d * scale * code - dmin * min. 4.5 bits per weight.
struct BlockQ4_K {
  std::uint16_t d;                    // super-scale of the scales
  std::uint16_t dmin;                 // super-scale of the mins
  std::uint8_t scales[kScaleBytesK];  // 8 six-bit scales and 8 six-bit mins, packed (get_scale_min_k4)
  std::uint8_t qs[kSuperBlock / 2];   // 4-bit codes
};
// 8 sub-blocks of 32: weight = d * scale * code - dmin * min. 5.5 bits per weight.
struct BlockQ5_K {
  std::uint16_t d;                    // super-scale of the scales
  std::uint16_t dmin;                 // super-scale of the mins
  std::uint8_t scales[kScaleBytesK];  // as BlockQ4_K
  std::uint8_t qh[kSuperBlock / 8];   // bit 4 of each code
  std::uint8_t qs[kSuperBlock / 2];   // low 4 bits of each code
};
// 16 sub-blocks of 16: weight = d * scale * (code - 32). 6.5625 bits per weight.
struct BlockQ6_K {
  std::uint8_t ql[kSuperBlock / 2];      // low 4 bits of each code
  std::uint8_t qh[kSuperBlock / 4];      // high 2 bits of each code
  std::int8_t scales[kSuperBlock / 16];  // 8-bit scales
  std::uint16_t d;                       // super-scale
};

static_assert(sizeof(BlockQ4_0) == 2 + kBlock / 2);
static_assert(sizeof(BlockQ4_1) == 4 + kBlock / 2);
static_assert(sizeof(BlockQ5_0) == 2 + 4 + kBlock / 2);
static_assert(sizeof(BlockQ5_1) == 4 + 4 + kBlock / 2);
static_assert(sizeof(BlockQ8_0) == 2 + kBlock);
static_assert(sizeof(BlockQ2_K) == 4 + kSuperBlock / 16 + kSuperBlock / 4);
static_assert(sizeof(BlockQ3_K) == 2 + kSuperBlock / 4 + kSuperBlock / 8 + 12);
static_assert(sizeof(BlockQ4_K) == 4 + kScaleBytesK + kSuperBlock / 2);
static_assert(sizeof(BlockQ5_K) == 4 + kScaleBytesK + kSuperBlock / 2 + kSuperBlock / 8);
static_assert(sizeof(BlockQ6_K) == 2 + kSuperBlock / 16 + 3 * kSuperBlock / 4);

}  // namespace qk::ggml
