// NF4 and double-quantized INT4: quantization, the scalar dequantize and GEMV references, the registries.
#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "quantkit/core/block_formats.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/kernels/block_kernels.hpp"

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

std::vector<BlockNf4> quantize_nf4(std::span<const float> x) {
  check_row(x, BlockNf4::kWeights, "nf4");
  std::vector<BlockNf4> blocks(x.size() / BlockNf4::kWeights);
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const float* w = x.data() + b * BlockNf4::kWeights;
    float absmax = 0;
    for (std::int64_t j = 0; j < BlockNf4::kWeights; ++j) absmax = std::fmax(absmax, std::fabs(w[j]));
    BlockNf4& blk = blocks[b];
    blk.absmax = absmax;
    // Division, not a reciprocal: 1/absmax overflows for a subnormal absmax.
    const auto norm = [&](float v) { return absmax > 0 ? v / absmax : 0.0f; };
    for (std::int64_t j = 0; j < BlockNf4::kWeights; j += 2) {
      blk.codes[j / 2] = static_cast<std::uint8_t>(nf4_code(norm(w[j])) | (nf4_code(norm(w[j + 1])) << 4));
    }
  }
  return blocks;
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

void dequantize_nf4_ref(const BlockNf4* blocks, std::int64_t n, float* out) {
  for (std::int64_t b = 0; b < n / BlockNf4::kWeights; ++b)
    for (std::int64_t j = 0; j < BlockNf4::kWeights; ++j)
      out[b * BlockNf4::kWeights + j] = kNf4Levels[nibble(blocks[b].codes, j)] * blocks[b].absmax;
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

namespace kernels {

void gemv_nf4_ref(const BlockNf4* w, std::int64_t rows, std::int64_t cols, const float* x, float* y) {
  const std::int64_t per_row = cols / BlockNf4::kWeights;
  for (std::int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (std::int64_t b = 0; b < per_row; ++b) {
      const BlockNf4& blk = w[r * per_row + b];
      float sum = 0;  // levels times x, scaled by the block's absmax once
      for (std::int64_t j = 0; j < BlockNf4::kWeights; ++j)
        sum += kNf4Levels[nibble(blk.codes, j)] * x[b * BlockNf4::kWeights + j];
      acc += sum * blk.absmax;
    }
    y[r] = acc;
  }
}

void gemv_q4dq_ref(const BlockQ4DQ* w, std::int64_t rows, std::int64_t cols, const float* x, float* y) {
  const std::int64_t per_row = cols / BlockQ4DQ::kWeights;
  for (std::int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (std::int64_t b = 0; b < per_row; ++b) {
      const BlockQ4DQ& blk = w[r * per_row + b];
      for (std::int64_t g = 0; g < BlockQ4DQ::kWeights / BlockQ4DQ::kGroup; ++g) {
        float sum = 0;  // codes times x, scaled by the group's scale once
        for (std::int64_t j = 0; j < BlockQ4DQ::kGroup; ++j) {
          const std::int64_t k = g * BlockQ4DQ::kGroup + j;
          sum +=
              static_cast<float>(static_cast<int>(nibble(blk.codes, k)) - 8) * x[b * BlockQ4DQ::kWeights + k];
        }
        acc += sum * (static_cast<float>(blk.scales[g]) * blk.super_scale);
      }
    }
    y[r] = acc;
  }
}

namespace {
constexpr std::array kDeqNf4 = {
    KernelVariant<DequantizeNf4Fn>{Isa::kScalar, "scalar", dequantize_nf4_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<DequantizeNf4Fn>{Isa::kAvx2, "avx2", dequantize_nf4_avx2},
#endif
};
constexpr std::array kDeqQ4dq = {
    KernelVariant<DequantizeQ4dqFn>{Isa::kScalar, "scalar", dequantize_q4dq_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<DequantizeQ4dqFn>{Isa::kAvx2, "avx2", dequantize_q4dq_avx2},
#endif
};
constexpr std::array kGemvNf4 = {
    KernelVariant<GemvNf4Fn>{Isa::kScalar, "scalar", gemv_nf4_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<GemvNf4Fn>{Isa::kAvx2, "avx2", gemv_nf4_avx2},
    KernelVariant<GemvNf4Fn>{Isa::kAvx512Vnni, "avx512", gemv_nf4_avx512},
#endif
};
constexpr std::array kGemvQ4dq = {
    KernelVariant<GemvQ4dqFn>{Isa::kScalar, "scalar", gemv_q4dq_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<GemvQ4dqFn>{Isa::kAvx2, "avx2", gemv_q4dq_avx2},
    KernelVariant<GemvQ4dqFn>{Isa::kAvx512Vnni, "avx512", gemv_q4dq_avx512},
#endif
};

void check_gemv(std::int64_t rows, std::int64_t cols, std::int64_t block, std::size_t blocks,
                const char* what) {
  if (rows < 0 || cols < 0 || cols % block != 0)
    throw Error(std::string(what) + ": " + std::to_string(cols) +
                " columns are not a multiple of the block of " + std::to_string(block));
  if (static_cast<std::int64_t>(blocks) != rows * (cols / block))
    throw Error(std::string(what) + ": " + std::to_string(blocks) + " blocks for a " + std::to_string(rows) +
                " x " + std::to_string(cols) + " matrix");
}
}  // namespace

std::span<const KernelVariant<DequantizeNf4Fn>> dequantize_nf4_variants() { return kDeqNf4; }
std::span<const KernelVariant<DequantizeQ4dqFn>> dequantize_q4dq_variants() { return kDeqQ4dq; }
std::span<const KernelVariant<GemvNf4Fn>> gemv_nf4_variants() { return kGemvNf4; }
std::span<const KernelVariant<GemvQ4dqFn>> gemv_q4dq_variants() { return kGemvQ4dq; }

std::vector<float> dequantize(std::span<const BlockNf4> blocks) {
  static const DequantizeNf4Fn fn = select(dequantize_nf4_variants());
  std::vector<float> out(blocks.size() * BlockNf4::kWeights);
  fn(blocks.data(), static_cast<std::int64_t>(out.size()), out.data());
  return out;
}
std::vector<float> dequantize(std::span<const BlockQ4DQ> blocks) {
  static const DequantizeQ4dqFn fn = select(dequantize_q4dq_variants());
  std::vector<float> out(blocks.size() * BlockQ4DQ::kWeights);
  fn(blocks.data(), static_cast<std::int64_t>(out.size()), out.data());
  return out;
}
void gemv(std::span<const BlockNf4> w, std::int64_t rows, std::int64_t cols, std::span<const float> x,
          std::span<float> y) {
  check_gemv(rows, cols, BlockNf4::kWeights, w.size(), "nf4 gemv");
  if (static_cast<std::int64_t>(x.size()) != cols || static_cast<std::int64_t>(y.size()) != rows)
    throw Error("nf4 gemv: x or y does not match the matrix");
  static const GemvNf4Fn fn = select(gemv_nf4_variants());
  fn(w.data(), rows, cols, x.data(), y.data());
}
void gemv(std::span<const BlockQ4DQ> w, std::int64_t rows, std::int64_t cols, std::span<const float> x,
          std::span<float> y) {
  check_gemv(rows, cols, BlockQ4DQ::kWeights, w.size(), "q4dq gemv");
  if (static_cast<std::int64_t>(x.size()) != cols || static_cast<std::int64_t>(y.size()) != rows)
    throw Error("q4dq gemv: x or y does not match the matrix");
  static const GemvQ4dqFn fn = select(gemv_q4dq_variants());
  fn(w.data(), rows, cols, x.data(), y.data());
}

}  // namespace kernels
}  // namespace qk
