// ggml's block formats: the type table, and the reference quantizers and dequantizers of ggml-quants.c
// (ggml commit in tests/data/ggml/README.md), step for step in the same float32 order, so that the bytes
// and floats are ggml's to the bit. The library is compiled with -ffp-contract=off, as the golden files were.
#include "quantkit/core/ggml_blocks.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "ggml_block_codes.hpp"
#include "ggml_kquants.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"

namespace qk::ggml {
namespace {

constexpr std::array<TypeTraits, 15> kTypes = {{
    {Type::kF32, "f32", 1, 4, true, true},
    {Type::kF16, "f16", 1, 2, true, true},
    {Type::kQ4_0, "q4_0", kBlock, sizeof(BlockQ4_0), true, true},
    {Type::kQ4_1, "q4_1", kBlock, sizeof(BlockQ4_1), true, true},
    {Type::kQ5_0, "q5_0", kBlock, sizeof(BlockQ5_0), true, true},
    {Type::kQ5_1, "q5_1", kBlock, sizeof(BlockQ5_1), true, true},
    {Type::kQ8_0, "q8_0", kBlock, sizeof(BlockQ8_0), true, true},
    {Type::kQ8_1, "q8_1", kBlock, 4 + kBlock, false, false},
    {Type::kQ2_K, "q2_K", kSuperBlock, sizeof(BlockQ2_K), true, true},
    {Type::kQ3_K, "q3_K", kSuperBlock, sizeof(BlockQ3_K), true, true},
    {Type::kQ4_K, "q4_K", kSuperBlock, sizeof(BlockQ4_K), true, true},
    {Type::kQ5_K, "q5_K", kSuperBlock, sizeof(BlockQ5_K), true, true},
    {Type::kQ6_K, "q6_K", kSuperBlock, sizeof(BlockQ6_K), true, true},
    {Type::kQ8_K, "q8_K", kSuperBlock, 4 + kSuperBlock + kSuperBlock / 16 * 2, false, false},
    {Type::kBF16, "bf16", 1, 2, true, true},
}};

float from_half(std::uint16_t bits) { return half_bits_to_float(bits); }
std::uint16_t to_half(float value) { return float_to_half_bits(value); }

template <class Block>
Block load(const std::byte* in, std::int64_t index) {
  Block block;
  std::memcpy(&block, in + index * static_cast<std::int64_t>(sizeof(Block)), sizeof(Block));
  return block;
}
template <class Block>
void store(const Block& block, std::byte* out, std::int64_t index) {
  std::memcpy(out + index * static_cast<std::int64_t>(sizeof(Block)), &block, sizeof(Block));
}

void check_finite(const TypeTraits& t, const float* x, std::int64_t n) {
  // A branch-free pass over the exponent bits (all ones: Inf or NaN) that the compiler vectorizes; an
  // early exit per element would not be, and cost a quarter of Q4_0's quantization time.
  std::uint32_t bad = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    bad |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  if (!bad) return;
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      throw Error("ggml " + std::string(t.name) + ": input element " + std::to_string(i) +
                  " is not finite (ggml's quantizers are undefined there)");
}

// The codes of quantize_row_q4_0_ref and _q5_0_ref: d = max / -2^(bits-1) (max: the signed absmax, so
// it gets the code 0), code = (int8_t)(x / d + 2^(bits-1) + 0.5) capped at 2^bits - 1. Returns d.
template <int kBits>
float symmetric_codes(const float* x, std::uint8_t* codes) {
  constexpr int kHalf = 1 << (kBits - 1);
  const float d = detail::signed_absmax(x) / -kHalf;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  detail::scaled_codes(x, id, kHalf + 0.5f, 2 * kHalf - 1, codes);
  return d;
}

// The codes of quantize_row_q4_1_ref and _q5_1_ref: d = (max - min) / (2^bits - 1), code = (x - min) / d
// + 0.5 converted as ggml does: Q4_1 through (int8_t) capped at 15, Q5_1 through (uint8_t) uncapped.
template <int kBits>
float affine_codes(const float* x, std::uint8_t* codes, float& min) {
  float max;
  detail::min_max(x, min, max);
  const float d = (max - min) / ((1 << kBits) - 1);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  detail::affine_codes<kBits>(x, min, id, codes);
  return d;
}

std::uint32_t get_high_bits(const std::uint8_t* in) {
  return static_cast<std::uint32_t>(in[0]) | static_cast<std::uint32_t>(in[1]) << 8 |
         static_cast<std::uint32_t>(in[2]) << 16 | static_cast<std::uint32_t>(in[3]) << 24;
}

// quantize_row_q4_0_ref, _q5_0_ref (Block with d, qs[, qh]).
template <class Block, int kBits>
Block quantize_symmetric(const float* x) {
  Block b{};
  std::uint8_t codes[kBlock];
  b.d = to_half(symmetric_codes<kBits>(x, codes));
  detail::pack_nibbles(codes, b.qs);
  if constexpr (kBits == 5) detail::pack_high_bits(codes, b.qh);
  return b;
}

// quantize_row_q4_1_ref, _q5_1_ref (Block with d, m, qs[, qh]).
template <class Block, int kBits>
Block quantize_affine(const float* x) {
  Block b{};
  std::uint8_t codes[kBlock];
  float min;
  b.d = to_half(affine_codes<kBits>(x, codes, min));
  b.m = to_half(min);
  detail::pack_nibbles(codes, b.qs);
  if constexpr (kBits == 5) detail::pack_high_bits(codes, b.qh);
  return b;
}

// quantize_row_q8_0_ref: d = absmax / 127, codes roundf(x / d) (halves away from zero).
BlockQ8_0 quantize_q8_0(const float* x) {
  BlockQ8_0 b{};
  float amax = 0.0f;
  for (std::int64_t j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = to_half(d);
  detail::rounded_codes(x, id, b.qs);
  return b;
}

void dequantize_q4_0(const BlockQ4_0& b, float* y) {
  const float d = from_half(b.d);
  for (std::int64_t j = 0; j < kBlock / 2; ++j) {
    y[j] = static_cast<float>((b.qs[j] & 0x0f) - 8) * d;
    y[j + kBlock / 2] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
  }
}

void dequantize_q4_1(const BlockQ4_1& b, float* y) {
  const float d = from_half(b.d);
  const float m = from_half(b.m);
  for (std::int64_t j = 0; j < kBlock / 2; ++j) {
    y[j] = static_cast<float>(b.qs[j] & 0x0f) * d + m;
    y[j + kBlock / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
  }
}

void dequantize_q5_0(const BlockQ5_0& b, float* y) {
  const float d = from_half(b.d);
  const std::uint32_t qh = get_high_bits(b.qh);
  for (std::int64_t j = 0; j < kBlock / 2; ++j) {
    const std::uint32_t h0 = ((qh >> j) << 4) & 0x10u;
    const std::uint32_t h1 = (qh >> (j + 12)) & 0x10u;
    y[j] = static_cast<float>(static_cast<int>((b.qs[j] & 0x0fu) | h0) - 16) * d;
    y[j + kBlock / 2] = static_cast<float>(static_cast<int>((b.qs[j] >> 4) | h1) - 16) * d;
  }
}

void dequantize_q5_1(const BlockQ5_1& b, float* y) {
  const float d = from_half(b.d);
  const float m = from_half(b.m);
  const std::uint32_t qh = get_high_bits(b.qh);
  for (std::int64_t j = 0; j < kBlock / 2; ++j) {
    const std::uint32_t h0 = ((qh >> j) << 4) & 0x10u;
    const std::uint32_t h1 = (qh >> (j + 12)) & 0x10u;
    y[j] = static_cast<float>((b.qs[j] & 0x0fu) | h0) * d + m;
    y[j + kBlock / 2] = static_cast<float>((b.qs[j] >> 4) | h1) * d + m;
  }
}

void dequantize_q8_0(const BlockQ8_0& b, float* y) {
  const float d = from_half(b.d);
  for (std::int64_t j = 0; j < kBlock; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

// dequantize_row_q2_K: 2-bit codes of sub-blocks l and l + 16 of each 32 bytes, four bit planes each.
void dequantize_q2_K(const BlockQ2_K& b, float* y) {
  const float d = from_half(b.d);
  const float min = from_half(b.dmin);
  const std::uint8_t* q = b.qs;
  int is = 0;
  for (std::int64_t n = 0; n < kSuperBlock; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const std::uint8_t sc = b.scales[is++];
        const float dl = d * static_cast<float>(sc & 0xf);
        const float ml = min * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
      }
    }
    q += 32;
  }
}

// dequantize_row_q3_K: the 12 scale bytes hold 16 six-bit scales: low 4 bits in bytes 0..7 (low nibbles
// for scales 0..7, high nibbles for 8..15), high 2 bits in bytes 8..11 (scale i: byte 8 + i % 4, bits
// 2 * (i / 4)). A code's bit 2 is in hmask; code - 4 when that bit is clear.
void dequantize_q3_K(const BlockQ3_K& b, float* y) {
  const float d_all = from_half(b.d);
  std::int8_t scales[16];
  for (int i = 0; i < 16; ++i) {
    const int low = i < 8 ? (b.scales[i] & 0xf) : (b.scales[i - 8] >> 4);
    const int high = (b.scales[8 + i % 4] >> (2 * (i / 4))) & 3;
    scales[i] = static_cast<std::int8_t>(low | (high << 4));
  }
  const std::uint8_t* q = b.qs;
  const std::uint8_t* hm = b.hmask;
  std::uint8_t m = 1;
  int is = 0;
  for (std::int64_t n = 0; n < kSuperBlock; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d_all * static_cast<float>(scales[is++] - 32);
        for (int l = 0; l < 16; ++l) {
          const int k = l + 16 * half;
          const int code = ((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4);
          *y++ = dl * static_cast<float>(code);
        }
      }
      m = static_cast<std::uint8_t>(m << 1);
    }
    q += 32;
  }
}

// dequantize_row_q4_K and dequantize_row_q5_K (high_bits null for Q4_K): per 64 weights, two sub-blocks
// share 32 bytes, the first in the low nibbles.
void dequantize_k4(std::uint16_t d_bits, std::uint16_t dmin_bits, const std::uint8_t* scales,
                   const std::uint8_t* qs, const std::uint8_t* high_bits, float* y) {
  const float d = from_half(d_bits);
  const float min = from_half(dmin_bits);
  int is = 0;
  std::uint8_t u1 = 1, u2 = 2;
  for (std::int64_t j = 0; j < kSuperBlock; j += 64) {
    std::uint8_t sc, m;
    detail::scale_min_k4(is, scales, sc, m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = min * static_cast<float>(m);
    detail::scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * static_cast<float>(sc);
    const float m2 = min * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      const int code = (qs[l] & 0xf) + (high_bits && (high_bits[l] & u1) ? 16 : 0);
      *y++ = d1 * static_cast<float>(code) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      const int code = (qs[l] >> 4) + (high_bits && (high_bits[l] & u2) ? 16 : 0);
      *y++ = d2 * static_cast<float>(code) - m2;
    }
    qs += 32;
    is += 2;
    u1 = static_cast<std::uint8_t>(u1 << 2);
    u2 = static_cast<std::uint8_t>(u2 << 2);
  }
}

// dequantize_row_q6_K: per 128 weights, 64 bytes of low nibbles and 32 of high bit pairs; the product
// is (d * scale) * code, in that order.
void dequantize_q6_K(const BlockQ6_K& b, float* y) {
  const float d = from_half(b.d);
  const std::uint8_t* ql = b.ql;
  const std::uint8_t* qh = b.qh;
  const std::int8_t* sc = b.scales;
  for (std::int64_t n = 0; n < kSuperBlock; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

template <class Block, class F>
void quantize_blocks(const float* x, std::int64_t blocks, std::int64_t weights, std::byte* out, F quantize) {
  for (std::int64_t i = 0; i < blocks; ++i) store(quantize(x + i * weights), out, i);
}
template <class Block, class F>
void dequantize_blocks(const std::byte* in, std::int64_t blocks, std::int64_t weights, float* y,
                       F dequantize) {
  for (std::int64_t i = 0; i < blocks; ++i) dequantize(load<Block>(in, i), y + i * weights);
}

}  // namespace

std::span<const TypeTraits> types() { return kTypes; }

const TypeTraits& traits(Type type) {
  for (const TypeTraits& t : kTypes) {
    if (t.type == type) return t;
  }
  throw Error("ggml: unknown type id " + std::to_string(static_cast<std::uint32_t>(type)));
}

std::optional<Type> type_from_name(std::string_view name) {
  for (const TypeTraits& t : kTypes) {
    if (t.name == name) return t.type;
  }
  return std::nullopt;
}

std::int64_t row_bytes(Type type, std::int64_t n) {
  const TypeTraits& t = traits(type);
  if (n < 0 || n % t.block_weights != 0) {
    throw Error("ggml " + std::string(t.name) + ": a row of " + std::to_string(n) +
                " weights is not a whole number of blocks of " + std::to_string(t.block_weights));
  }
  return n / t.block_weights * t.block_bytes;
}

void quantize_row(Type type, const float* x, std::int64_t n, std::byte* out) {
  quantize_row(type, x, n, out, nullptr);
}

void quantize_row(Type type, const float* x, std::int64_t n, std::byte* out, const float* importance) {
  const TypeTraits& t = traits(type);
  row_bytes(type, n);
  if (!t.can_quantize)
    throw Error("ggml " + std::string(t.name) + ": quantizing to this type is not supported");
  const std::int64_t blocks = n / t.block_weights;
  switch (type) {
    case Type::kF32:
      if (n > 0) std::memcpy(out, x, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case Type::kF16:
    case Type::kBF16:
      for (std::int64_t i = 0; i < n; ++i) {
        const std::uint16_t bits = type == Type::kF16 ? to_half(x[i]) : float_to_bfloat16_bits(x[i]);
        std::memcpy(out + 2 * i, &bits, 2);
      }
      return;
    default:
      break;
  }
  check_finite(t, x, n);
  if (importance != nullptr && type != Type::kQ8_0) {  // ggml's quantize_q8_0 ignores the importance
    for (std::int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(importance[i])) {
        throw Error("ggml " + std::string(t.name) + ": importance element " + std::to_string(i) +
                    " is not finite");
      }
    }
    return detail::quantize_row_weighted(type, x, n, importance, out);
  }
  switch (type) {
    case Type::kQ4_0:
      return quantize_blocks<BlockQ4_0>(x, blocks, kBlock, out, quantize_symmetric<BlockQ4_0, 4>);
    case Type::kQ4_1:
      return quantize_blocks<BlockQ4_1>(x, blocks, kBlock, out, quantize_affine<BlockQ4_1, 4>);
    case Type::kQ5_0:
      return quantize_blocks<BlockQ5_0>(x, blocks, kBlock, out, quantize_symmetric<BlockQ5_0, 5>);
    case Type::kQ5_1:
      return quantize_blocks<BlockQ5_1>(x, blocks, kBlock, out, quantize_affine<BlockQ5_1, 5>);
    case Type::kQ8_0:
      return quantize_blocks<BlockQ8_0>(x, blocks, kBlock, out, quantize_q8_0);
    case Type::kQ2_K:
      return quantize_blocks<BlockQ2_K>(x, blocks, kSuperBlock, out, detail::quantize_q2_K);
    case Type::kQ3_K:
      return quantize_blocks<BlockQ3_K>(x, blocks, kSuperBlock, out, detail::quantize_q3_K);
    case Type::kQ4_K:
      return quantize_blocks<BlockQ4_K>(x, blocks, kSuperBlock, out, detail::quantize_q4_K);
    case Type::kQ5_K:
      return quantize_blocks<BlockQ5_K>(x, blocks, kSuperBlock, out, detail::quantize_q5_K);
    case Type::kQ6_K:
      return quantize_blocks<BlockQ6_K>(x, blocks, kSuperBlock, out,
                                        [](const float* b) { return detail::quantize_q6_K(b); });
    default:
      throw Error("ggml " + std::string(t.name) + ": quantizing to this type is not supported");
  }
}

void dequantize_row(Type type, const std::byte* in, std::int64_t n, float* y) {
  const TypeTraits& t = traits(type);
  row_bytes(type, n);
  const std::int64_t blocks = n / t.block_weights;
  switch (type) {
    case Type::kF32:
      if (n > 0) std::memcpy(y, in, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case Type::kF16:
    case Type::kBF16:
      for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, in + 2 * i, 2);
        y[i] = type == Type::kF16 ? from_half(bits) : bfloat16_bits_to_float(bits);
      }
      return;
    case Type::kQ4_0:
      return dequantize_blocks<BlockQ4_0>(in, blocks, kBlock, y, dequantize_q4_0);
    case Type::kQ4_1:
      return dequantize_blocks<BlockQ4_1>(in, blocks, kBlock, y, dequantize_q4_1);
    case Type::kQ5_0:
      return dequantize_blocks<BlockQ5_0>(in, blocks, kBlock, y, dequantize_q5_0);
    case Type::kQ5_1:
      return dequantize_blocks<BlockQ5_1>(in, blocks, kBlock, y, dequantize_q5_1);
    case Type::kQ8_0:
      return dequantize_blocks<BlockQ8_0>(in, blocks, kBlock, y, dequantize_q8_0);
    case Type::kQ2_K:
      return dequantize_blocks<BlockQ2_K>(in, blocks, kSuperBlock, y, dequantize_q2_K);
    case Type::kQ3_K:
      return dequantize_blocks<BlockQ3_K>(in, blocks, kSuperBlock, y, dequantize_q3_K);
    case Type::kQ4_K:
      return dequantize_blocks<BlockQ4_K>(in, blocks, kSuperBlock, y, [](const BlockQ4_K& b, float* out) {
        dequantize_k4(b.d, b.dmin, b.scales, b.qs, nullptr, out);
      });
    case Type::kQ5_K:
      return dequantize_blocks<BlockQ5_K>(in, blocks, kSuperBlock, y, [](const BlockQ5_K& b, float* out) {
        dequantize_k4(b.d, b.dmin, b.scales, b.qs, b.qh, out);
      });
    case Type::kQ6_K:
      return dequantize_blocks<BlockQ6_K>(in, blocks, kSuperBlock, y, dequantize_q6_K);
    default:
      throw Error("ggml " + std::string(t.name) + ": dequantizing this type is not supported");
  }
}

}  // namespace qk::ggml
