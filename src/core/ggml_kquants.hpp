// ggml's reference K-quant quantizers (quantize_row_q2_K_ref ... q6_K_ref), one super-block of 256 finite
// weights at a time, the helpers of ggml-quants.c that its importance-weighted quantizers share with them
// (ggml_kquants_weighted.cpp), and the scale unpacking the dequantizers use; used by ggml_blocks.cpp.
#pragma once

#include <bit>
#include <cstddef>
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

// ggml's nearest_int: adding 1.5 * 2^23 leaves round(f) (ties to even) in the low mantissa bits, for
// |f| <= 2^22 - 1; outside that (inf and NaN included) the bits are used as they are, as ggml does.
inline int nearest_int(float fval) {
  const float val = fval + 12582912.f;
  const auto i = std::bit_cast<std::int32_t>(val);
  return (i & 0x007fffff) - 0x00400000;
}

// make_qx_quants with rmse_type 1: codes L = l + nmax, l in [-nmax, nmax - 1], and the scale, the best of
// 19 scales around nmax / max (max: the first value of largest magnitude) by weighted least squares with
// weights qw[i], or x[i]^2 when qw is null. A group below GROUP_MAX_EPS gets codes 0 and scale 0.
float make_qx_quants(int n, int nmax, const float* x, std::int8_t* L, const float* qw);
// make_qkx2_quants: scale and min (x ~ scale * L - the_min, the_min >= 0) of a group, the best of
// nstep + 1 affine least-squares fits by weighted squared (or absolute, use_mad) error. With use_mad false
// it is also ggml's make_qkx3_quants given weights (the two differ only in what they do without weights).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, std::uint8_t* L, float* the_min,
                       std::uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);

// The 6-bit scales ls[8] and mins lm[8] of Q4_K and Q5_K into their 12 bytes (the inverse of scale_min_k4),
// as ggml writes them: the values are not clamped here, and their bits above 6 are cut as C's stores cut
// them.
void pack_scales_k4(const std::uint8_t* ls, const std::uint8_t* lm, std::uint8_t* out);
// Q3_K's 16 six-bit scales ls[16] (0..63, the stored value scale + 32) into its 12 bytes (all 0 before).
void pack_scales_q3_K(const std::int8_t* ls, std::uint8_t* out);
// How every K-quantizer ends, reference or weighted, once d (and dmin) and the scales are stored in y: each
// code of L recomputed from the stored float16 and 6-bit (Q2_K: 4-bit) values (a sub-block whose scale is 0
// keeps the codes of its fit), then packed into y.
void finish_q2_K(const float* x, std::uint8_t* L, BlockQ2_K& y);
void finish_q3_K(const float* x, std::int8_t* L, BlockQ3_K& y);
void finish_q4_K(const float* x, std::uint8_t* L, BlockQ4_K& y);
void finish_q5_K(const float* x, std::uint8_t* L, BlockQ5_K& y);

BlockQ2_K quantize_q2_K(const float* x);
BlockQ3_K quantize_q3_K(const float* x);
BlockQ4_K quantize_q4_K(const float* x);
BlockQ5_K quantize_q5_K(const float* x);
// qw null: quantize_row_q6_K_ref; otherwise quantize_row_q6_K_impl with the 256 importance weights qw (used
// as they are, without the sigma2 term of the other types).
BlockQ6_K quantize_q6_K(const float* x, const float* qw = nullptr);

// ggml's quantize_<type>(x, out, 1, n, importance) with importance != null (the quantize_row_<type>_impl
// functions) for Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K: n finite weights (a multiple of
// the block), importance[0..n) one weight per column. ggml_kquants_weighted.cpp.
void quantize_row_weighted(Type type, const float* x, std::int64_t n, const float* importance,
                           std::byte* out);

}  // namespace qk::ggml::detail
