// Scalar references of the GEMV on ggml's blocks (ggml_gemv.hpp): ggml's *_generic dot products
// (ggml-cpu/quants.c) per row, and quantize_row_q8_K_ref (ggml-quants.c), written from their definitions.
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/kernels/ggml_gemv.hpp"

namespace qk::kernels {

namespace {

using ggml::kBlock;
using ggml::kSuperBlock;

// ggml's nearest_int: adding 1.5 * 2^23 leaves round(v) (to nearest even) in the low mantissa bits;
// valid for |v| <= 2^22 - 1, which |-127 / max * x| <= 127 always is.
int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  return static_cast<int>(std::bit_cast<std::uint32_t>(shifted) & 0x007fffffu) - 0x00400000;
}

// The j-th (0..7) 6-bit scale and min of a Q4_K super-block (ggml's get_scale_min_k4).
void scale_min_k4(int j, const std::uint8_t* q, int& scale, int& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace

void quantize_row_q8_k(const float* x, std::int64_t n, BlockQ8K* out) {
  if (n < 0 || n % kSuperBlock != 0)
    throw Error("q8_K: a row of " + std::to_string(n) + " values is not a multiple of 256");
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) throw Error("q8_K: input element " + std::to_string(i) + " is not finite");
  for (std::int64_t b = 0; b < n / kSuperBlock; ++b, x += kSuperBlock) {
    BlockQ8K& y = out[b];
    float max = 0, amax = 0;  // the first value of largest magnitude, and that magnitude
    for (std::int64_t j = 0; j < kSuperBlock; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    const float iscale = amax == 0 ? 0.0f : -127.0f / max;
    if (!std::isfinite(iscale) || iscale == 0) {  // all zero, or so small that -127 / max overflows
      std::memset(&y, 0, sizeof(y));
      continue;
    }
    for (std::int64_t j = 0; j < kSuperBlock; ++j) {
      const int v = nearest_int(iscale * x[j]);
      y.qs[j] = static_cast<std::int8_t>(v < 127 ? v : 127);
    }
    for (std::int64_t g = 0; g < kSuperBlock / 16; ++g) {
      int sum = 0;
      for (std::int64_t k = 0; k < 16; ++k) sum += y.qs[g * 16 + k];
      y.bsums[g] = static_cast<std::int16_t>(sum);
    }
    y.d = 1 / iscale;
  }
}

void gemv_q8_0_ref(const ggml::BlockQ8_0* w, std::int64_t rows, std::int64_t cols, const ggml::BlockQ8_0* x_q,
                   float* y) {
  const std::int64_t per_row = cols / kBlock;
  for (std::int64_t r = 0; r < rows; ++r) {
    float sum = 0;
    for (std::int64_t b = 0; b < per_row; ++b) {
      const ggml::BlockQ8_0& wb = w[r * per_row + b];
      const ggml::BlockQ8_0& xb = x_q[b];
      int dot = 0;  // |dot| <= 32 * 128 * 128: exact in int32
      for (std::int64_t j = 0; j < kBlock; ++j) dot += wb.qs[j] * xb.qs[j];
      sum += static_cast<float>(dot) * (half_bits_to_float(wb.d) * half_bits_to_float(xb.d));  // ggml's order
    }
    y[r] = sum;
  }
}

void gemv_q4_0_ref(const ggml::BlockQ4_0* w, std::int64_t rows, std::int64_t cols, const ggml::BlockQ8_0* x_q,
                   float* y) {
  const std::int64_t per_row = cols / kBlock;
  for (std::int64_t r = 0; r < rows; ++r) {
    float sum = 0;
    for (std::int64_t b = 0; b < per_row; ++b) {
      const ggml::BlockQ4_0& wb = w[r * per_row + b];
      const ggml::BlockQ8_0& xb = x_q[b];
      int dot = 0;  // weight j: low nibble of qs[j]; weight j + 16: its high nibble; both minus 8
      for (std::int64_t j = 0; j < kBlock / 2; ++j) {
        dot += ((wb.qs[j] & 0x0F) - 8) * xb.qs[j];
        dot += ((wb.qs[j] >> 4) - 8) * xb.qs[j + kBlock / 2];
      }
      sum += static_cast<float>(dot) * half_bits_to_float(wb.d) * half_bits_to_float(xb.d);  // ggml's order
    }
    y[r] = sum;
  }
}

void gemv_q4_k_ref(const ggml::BlockQ4_K* w, std::int64_t rows, std::int64_t cols, const BlockQ8K* x_q,
                   float* y) {
  const std::int64_t per_row = cols / kSuperBlock;
  for (std::int64_t r = 0; r < rows; ++r) {
    // ggml's order: the scaled sums in 8 float lanes (weight j in lane j % 8) over the whole row, the mins
    // subtracted from sum block by block, the lanes added at the end; the same float operations in the
    // same order as ggml_vec_dot_q4_K_q8_K_generic, so the same bits.
    float lanes[8] = {};
    float sum = 0;
    for (std::int64_t b = 0; b < per_row; ++b) {
      const ggml::BlockQ4_K& wb = w[r * per_row + b];
      const BlockQ8K& xb = x_q[b];
      // Sub-block s (32 weights): codes in the low nibbles of qs[32 (s / 2) ..] for even s, the high
      // nibbles for odd s. |lane| <= 8 * 63 * 4 * 15 * 127, |mins| <= 8 * 63 * 32 * 127: exact in int32.
      int lane[8] = {}, mins = 0;
      for (int s = 0; s < 8; ++s) {
        int scale = 0, min = 0;
        scale_min_k4(s, wb.scales, scale, min);
        const std::uint8_t* q = wb.qs + 32 * (s / 2);
        const int shift = (s % 2) * 4;
        for (int g = 0; g < 32; g += 8)  // integer lanes: exact in any order
          for (int k = 0; k < 8; ++k)
            lane[k] += scale * (((q[g + k] >> shift) & 0x0F) * xb.qs[32 * s + g + k]);
        mins += min * (xb.bsums[2 * s] + xb.bsums[2 * s + 1]);
      }
      const float d = half_bits_to_float(wb.d) * xb.d;
      for (int l = 0; l < 8; ++l) lanes[l] += d * static_cast<float>(lane[l]);
      sum -= half_bits_to_float(wb.dmin) * xb.d * static_cast<float>(mins);
    }
    for (const float v : lanes) sum += v;
    y[r] = sum;
  }
}

}  // namespace qk::kernels
