// ggml's reference K-quant quantizers (quantize_row_q2_K_ref ... q6_K_ref), one super-block of 256 finite
// weights at a time, and the scale unpacking they share with the dequantizers; used by ggml_blocks.cpp.
#pragma once

#include <cstdint>

#include "quantkit/core/ggml_blocks.hpp"

namespace qk::ggml::detail {

// ggml's get_scale_min_k4 (Q4_K, Q5_K): scales and mins 0..3 are the low 6 bits of bytes 0..3 and 4..7;
// 4..7 take their low 4 bits from the nibbles of bytes 8..11 and their high 2 bits from the top bits of
// bytes 0..7.
inline void scale_min_k4(int j, const std::uint8_t* q, std::uint8_t& d, std::uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<std::uint8_t>((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

BlockQ2_K quantize_q2_K(const float* x);
BlockQ3_K quantize_q3_K(const float* x);
BlockQ4_K quantize_q4_K(const float* x);
BlockQ5_K quantize_q5_K(const float* x);
BlockQ6_K quantize_q6_K(const float* x);

}  // namespace qk::ggml::detail
