// NF4 and double-quantized INT4 (core/block_formats.hpp): quantization and the scalar dequantize
// references. The SIMD dequantize and the GEMVs are kernels (kernels/block_kernels.hpp).
#include "quantkit/core/block_formats.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "quantkit/core/error.hpp"

namespace qk {

namespace {

void check_row(std::span<const float> x, std::int64_t block, const char* format) {
  if (static_cast<std::int64_t>(x.size()) % block != 0)
    throw Error(std::string(format) + ": " + std::to_string(x.size()) +
                " weights are not a multiple of the block of " + std::to_string(block));
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i]))
      throw Error(std::string(format) + ": non-finite weight at index " + std::to_string(i));
}

inline unsigned nibble(const std::uint8_t* codes, std::int64_t j) {
  return (codes[j / 2] >> ((j % 2) * 4)) & 0x0Fu;
}

}  // namespace

std::uint8_t nf4_code(float v) {
  // Midpoints between neighbouring levels; strictly above a midpoint goes up, so ties take the lower level.
  std::uint8_t code = 0;
  for (std::uint8_t k = 1; k < 16; ++k) {
    const float mid = (kNf4Levels[k - 1] + kNf4Levels[k]) * 0.5f;
    if (v > mid) code = k;
  }
  return code;
}

void check_nf4(const Nf4View& w, const std::string& what) {
  if (w.rows < 0 || w.cols < 0 || w.group_size <= 0 || w.group_size % 2 != 0)
    throw Error(what + ": bad nf4 shape " + std::to_string(w.rows) + " x " + std::to_string(w.cols) +
                " with groups of " + std::to_string(w.group_size) + " (groups must be even and positive)");
  if (w.cols % w.group_size != 0)
    throw Error(what + ": " + std::to_string(w.cols) + " columns are not a multiple of the group of " +
                std::to_string(w.group_size));
  // rows * cols fits: the codes span already holds half of it.
  const std::int64_t n = w.rows * w.cols;
  if (w.rows > 0 && w.cols > 0 && n / w.rows != w.cols) throw Error(what + ": nf4 shape overflows");
  if (static_cast<std::int64_t>(w.codes.size()) != n / 2)
    throw Error(what + ": " + std::to_string(w.codes.size()) + " code bytes for a " + std::to_string(w.rows) +
                " x " + std::to_string(w.cols) + " nf4 matrix (" + std::to_string(n / 2) + " expected)");
  if (static_cast<std::int64_t>(w.scales.size()) != n / w.group_size)
    throw Error(what + ": " + std::to_string(w.scales.size()) + " scales for a " + std::to_string(w.rows) +
                " x " + std::to_string(w.cols) + " nf4 matrix in groups of " + std::to_string(w.group_size));
}

Nf4Weights quantize_nf4(std::span<const float> x, std::int64_t cols, std::int64_t group_size) {
  Nf4Weights q;
  q.cols = cols;
  q.group_size = group_size;
  if (cols <= 0 || static_cast<std::int64_t>(x.size()) % cols != 0)
    throw Error("nf4: " + std::to_string(x.size()) + " weights are not whole rows of " +
                std::to_string(cols));
  q.rows = static_cast<std::int64_t>(x.size()) / cols;
  q.codes.assign(x.size() / 2, 0);
  q.scales.assign(x.size() / static_cast<std::size_t>(group_size > 0 ? group_size : 1), 0.0f);
  check_nf4(q.view(), "nf4");
  check_row(x, group_size, "nf4");
  for (std::size_t g = 0; g < q.scales.size(); ++g) {
    const float* w = x.data() + g * static_cast<std::size_t>(group_size);
    float absmax = 0;
    for (std::int64_t j = 0; j < group_size; ++j) absmax = std::fmax(absmax, std::fabs(w[j]));
    // The codebook rule (core/element_format.hpp's codebook_scale with NF4's largest level, 1): an all-zero
    // group gets 1, so a file's scales and these agree.
    const float scale = absmax > 0 ? absmax : 1.0f;
    q.scales[g] = scale;
    std::uint8_t* out = q.codes.data() + g * static_cast<std::size_t>(group_size) / 2;
    // Division, not a reciprocal: 1/absmax overflows for a subnormal absmax.
    for (std::int64_t j = 0; j < group_size; j += 2)
      out[j / 2] = static_cast<std::uint8_t>(nf4_code(w[j] / scale) | (nf4_code(w[j + 1] / scale) << 4));
  }
  return q;
}

std::vector<BlockQ4DQ> quantize_q4dq(std::span<const float> x) {
  check_row(x, BlockQ4DQ::kWeights, "q4dq");
  constexpr std::int64_t kGroups = BlockQ4DQ::kWeights / BlockQ4DQ::kGroup;
  std::vector<BlockQ4DQ> blocks(x.size() / BlockQ4DQ::kWeights);
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const float* w = x.data() + b * BlockQ4DQ::kWeights;
    float group_scale[kGroups];
    float largest = 0;
    for (std::int64_t g = 0; g < kGroups; ++g) {
      float amax = 0;
      for (std::int64_t j = 0; j < BlockQ4DQ::kGroup; ++j)
        amax = std::fmax(amax, std::fabs(w[g * BlockQ4DQ::kGroup + j]));
      group_scale[g] = amax / 7.5f;  // golden rule 2, symmetric 4-bit: (qmax - qmin) / 2
      largest = std::fmax(largest, group_scale[g]);
    }
    BlockQ4DQ& blk = blocks[b];
    // The unit: 255 of them cover the largest group scale, and it never underflows to 0 (a block of
    // subnormal weights still gets codes).
    blk.super_scale = 0.0f;
    if (largest > 0) {
      blk.super_scale = std::fmax(largest / 255.0f, std::numeric_limits<float>::denorm_min());
      if (255.0f * blk.super_scale < largest) blk.super_scale = std::nextafter(blk.super_scale, 1.0f);
    }
    for (std::int64_t g = 0; g < kGroups; ++g) {
      // Rounded up, so the stored scale is never below amax / 7.5: every weight stays within half a step
      // of its dequantized value (the +amax end included, rule 2's half-step clip).
      const float q = blk.super_scale > 0 ? std::ceil(group_scale[g] / blk.super_scale) : 0.0f;
      blk.scales[g] = static_cast<std::uint8_t>(std::fmin(q, 255.0f));
      const float scale = static_cast<float>(blk.scales[g]) * blk.super_scale;
      for (std::int64_t j = 0; j < BlockQ4DQ::kGroup; j += 2) {
        const std::int64_t k = g * BlockQ4DQ::kGroup + j;
        const auto code = [&](float v) {
          const float r = scale > 0 ? std::nearbyint(v / scale) : 0.0f;  // division: no reciprocal overflow
          return static_cast<unsigned>(std::fmin(std::fmax(r, -8.0f), 7.0f) + 8.0f);
        };
        blk.codes[k / 2] = static_cast<std::uint8_t>(code(w[k]) | (code(w[k + 1]) << 4));
      }
    }
  }
  return blocks;
}

void dequantize_nf4_ref(const std::uint8_t* codes, const float* scales, std::int64_t n,
                        std::int64_t group_size, float* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = kNf4Levels[nibble(codes, i)] * scales[i / group_size];
}

void dequantize_q4dq_ref(const BlockQ4DQ* blocks, std::int64_t n, float* out) {
  for (std::int64_t b = 0; b < n / BlockQ4DQ::kWeights; ++b) {
    for (std::int64_t j = 0; j < BlockQ4DQ::kWeights; ++j) {
      const float scale = static_cast<float>(blocks[b].scales[j / BlockQ4DQ::kGroup]) * blocks[b].super_scale;
      out[b * BlockQ4DQ::kWeights + j] =
          static_cast<float>(static_cast<int>(nibble(blocks[b].codes, j)) - 8) * scale;
    }
  }
}

}  // namespace qk
