// Row-wise quantized embedding rows in FBGEMM's fused layout (golden README rule 8): each row holds its
// codes followed by its own scale and bias. 8-bit rows: dim codes, float32 scale, float32 bias
// (dim + 8 bytes). 4-bit and 2-bit rows: codes packed low bits first, then float16 scale and float16 bias
// (ceil(dim * bits / 8) + 4 bytes). Scalar reference; the embedding-cache issue builds on it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"

namespace qk {

inline std::int64_t rowwise_row_bytes(std::int64_t dim, int bits) {
  if (bits == 8) return dim + 8;
  if (bits == 4 || bits == 2) return (dim * bits + 7) / 8 + 4;
  throw Error("row-wise embeddings support 8, 4 or 2 bits, got " + std::to_string(bits));
}

struct RowwiseRowParams {
  float scale;
  float bias;
};

// FBGEMM's FusedNBitRowwiseQuantizedSBHalf row for 8, 4 or 2 bits: codes packed low bits first, then a
// float16 scale and a float16 bias (ceil(dim * bits / 8) + 4 bytes). The bias is the row minimum rounded
// to float16 and the scale is computed from it, so the codes use the rounded parameters; a zero range
// (or a scale that underflows float16) gets scale 1. The 4- and 2-bit rows of golden rule 8 are these.
inline std::int64_t rowwise_half_sb_row_bytes(std::int64_t dim, int bits) {
  if (bits != 8 && bits != 4 && bits != 2)
    throw Error("row-wise embeddings support 8, 4 or 2 bits, got " + std::to_string(bits));
  return (dim * bits + 7) / 8 + 4;
}

inline void prepack_row_half_sb(std::span<const float> row, int bits, std::span<std::uint8_t> out) {
  const std::int64_t dim = static_cast<std::int64_t>(row.size());
  if (static_cast<std::int64_t>(out.size()) != rowwise_half_sb_row_bytes(dim, bits))
    throw Error("prepack_row: wrong row size");
  const float mn = dim ? *std::min_element(row.begin(), row.end()) : 0.0f;
  const float mx = dim ? *std::max_element(row.begin(), row.end()) : 0.0f;
  const float levels = static_cast<float>((1 << bits) - 1);
  const half bias(mn);
  const float range = mx - static_cast<float>(bias);
  half scale(range / levels);
  if (range == 0.0f || static_cast<float>(scale) == 0.0f) scale = half(1.0f);
  const float inv = 1.0f / static_cast<float>(scale);
  const std::int64_t code_bytes = (dim * bits + 7) / 8;
  std::fill(out.begin(), out.begin() + code_bytes, std::uint8_t{0});
  const int per_byte = 8 / bits;
  for (std::int64_t d = 0; d < dim; ++d) {
    const float code = std::clamp(
        std::nearbyint((row[static_cast<std::size_t>(d)] - static_cast<float>(bias)) * inv), 0.0f, levels);
    out[static_cast<std::size_t>(d / per_byte)] |=
        static_cast<std::uint8_t>(static_cast<unsigned>(code) << ((d % per_byte) * bits));
  }
  std::memcpy(out.data() + code_bytes, &scale.bits, 2);
  std::memcpy(out.data() + code_bytes + 2, &bias.bits, 2);
}

// Quantizes one row of dim floats into row_bytes bytes.
inline void prepack_row(std::span<const float> row, int bits, std::span<std::uint8_t> out) {
  const std::int64_t dim = static_cast<std::int64_t>(row.size());
  if (static_cast<std::int64_t>(out.size()) != rowwise_row_bytes(dim, bits))
    throw Error("prepack_row: wrong row size");
  const float mn = dim ? *std::min_element(row.begin(), row.end()) : 0.0f;
  const float mx = dim ? *std::max_element(row.begin(), row.end()) : 0.0f;
  if (bits == 8) {
    const float range = mx - mn;
    const float scale = range / 255.0f;
    const float inv = 255.0f / (range + 1e-8f);
    for (std::int64_t d = 0; d < dim; ++d) {
      const float code = std::nearbyint((row[static_cast<std::size_t>(d)] - mn) * inv);
      out[static_cast<std::size_t>(d)] = static_cast<std::uint8_t>(std::clamp(code, 0.0f, 255.0f));
    }
    std::memcpy(out.data() + dim, &scale, 4);
    std::memcpy(out.data() + dim + 4, &mn, 4);
    return;
  }
  prepack_row_half_sb(row, bits, out);
}

inline RowwiseRowParams rowwise_params(std::span<const std::uint8_t> row, std::int64_t dim, int bits) {
  RowwiseRowParams p{};
  if (bits == 8) {
    std::memcpy(&p.scale, row.data() + dim, 4);
    std::memcpy(&p.bias, row.data() + dim + 4, 4);
  } else {
    const std::int64_t code_bytes = (dim * bits + 7) / 8;
    std::uint16_t s, b;
    std::memcpy(&s, row.data() + code_bytes, 2);
    std::memcpy(&b, row.data() + code_bytes + 2, 2);
    p.scale = half_bits_to_float(s);
    p.bias = half_bits_to_float(b);
  }
  return p;
}

inline std::uint32_t rowwise_code(std::span<const std::uint8_t> row, std::int64_t d, int bits) {
  if (bits == 8) return row[static_cast<std::size_t>(d)];
  const int per_byte = 8 / bits;
  return (row[static_cast<std::size_t>(d / per_byte)] >> ((d % per_byte) * bits)) & ((1u << bits) - 1u);
}

// code * scale + bias: two float32 operations, not fused.
inline void dequantize_row(std::span<const std::uint8_t> row, std::int64_t dim, int bits,
                           std::span<float> out) {
  const RowwiseRowParams p = rowwise_params(row, dim, bits);
  for (std::int64_t d = 0; d < dim; ++d) {
    out[static_cast<std::size_t>(d)] = static_cast<float>(rowwise_code(row, d, bits)) * p.scale + p.bias;
  }
}

enum class BagMode { kSum, kMean, kMax };

// Embedding bag over packed rows. offsets has one entry per bag (or one more with include_last_offset);
// per_sample_weights is empty or one weight per index (sum mode only, as in PyTorch).
inline void embedding_bag_rowwise(std::span<const std::uint8_t> packed, std::int64_t rows, std::int64_t dim,
                                  int bits, std::span<const std::int64_t> indices,
                                  std::span<const std::int64_t> offsets, BagMode mode,
                                  std::span<const float> per_sample_weights, bool include_last_offset,
                                  std::span<float> out) {
  const std::int64_t row_bytes = rowwise_row_bytes(dim, bits);
  if (static_cast<std::int64_t>(packed.size()) != rows * row_bytes)
    throw Error("embedding bag: packed table has the wrong size");
  const std::int64_t n_idx = static_cast<std::int64_t>(indices.size());
  const std::int64_t bags = include_last_offset ? static_cast<std::int64_t>(offsets.size()) - 1
                                                : static_cast<std::int64_t>(offsets.size());
  if (bags < 0) throw Error("embedding bag: include_last_offset needs at least one offset");
  if (static_cast<std::int64_t>(out.size()) != bags * dim)
    throw Error("embedding bag: output has the wrong size");
  if (!per_sample_weights.empty() && (per_sample_weights.size() != indices.size() || mode != BagMode::kSum)) {
    throw Error("embedding bag: per-sample weights need one weight per index and sum mode");
  }
  std::vector<float> dequantized(static_cast<std::size_t>(dim));
  for (std::int64_t b = 0; b < bags; ++b) {
    const std::int64_t begin = offsets[static_cast<std::size_t>(b)];
    const std::int64_t end = (b + 1 < static_cast<std::int64_t>(offsets.size()))
                                 ? offsets[static_cast<std::size_t>(b + 1)]
                                 : n_idx;
    if (begin < 0 || end < begin || end > n_idx)
      throw Error("embedding bag: offsets are not monotone or exceed the indices");
    std::span<float> acc = out.subspan(static_cast<std::size_t>(b * dim), static_cast<std::size_t>(dim));
    std::fill(acc.begin(), acc.end(), mode == BagMode::kMax && end > begin ? -INFINITY : 0.0f);
    for (std::int64_t j = begin; j < end; ++j) {
      const std::int64_t id = indices[static_cast<std::size_t>(j)];
      if (id < 0 || id >= rows)
        throw Error("embedding bag: index " + std::to_string(id) + " is out of range [0, " +
                    std::to_string(rows) + ")");
      const auto row =
          packed.subspan(static_cast<std::size_t>(id * row_bytes), static_cast<std::size_t>(row_bytes));
      if (mode == BagMode::kSum) {
        const RowwiseRowParams p = rowwise_params(row, dim, bits);
        const float w = per_sample_weights.empty() ? 1.0f : per_sample_weights[static_cast<std::size_t>(j)];
        const float ws = w * p.scale;
        const float wb = w * p.bias;
        for (std::int64_t d = 0; d < dim; ++d) {
          acc[static_cast<std::size_t>(d)] = std::fma(ws, static_cast<float>(rowwise_code(row, d, bits)),
                                                      acc[static_cast<std::size_t>(d)] + wb);
        }
      } else {
        dequantize_row(row, dim, bits, dequantized);
        for (std::int64_t d = 0; d < dim; ++d) {
          float& a = acc[static_cast<std::size_t>(d)];
          a = mode == BagMode::kMax ? std::max(a, dequantized[static_cast<std::size_t>(d)])
                                    : a + dequantized[static_cast<std::size_t>(d)];
        }
      }
    }
    if (mode == BagMode::kMean && end > begin) {
      const float count = static_cast<float>(end - begin);
      for (float& a : acc) a /= count;
    }
  }
}

}  // namespace qk
