// ggml's reference K-quant quantizers (ggml-quants.c: quantize_row_q2_K_ref ... quantize_row_q6_K_ref and
// their helpers make_qx_quants, make_q3_quants, make_qkx2_quants), ported operation for operation: the
// same float32 expressions in the same order (compiled with -ffp-contract=off, as the golden files were),
// the same integer conversions (an int stored into a uint8_t or int8_t wraps, as in C), so that the bytes
// are ggml's (tests/data/ggml).
#include "ggml_kquants.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "quantkit/core/half.hpp"

namespace qk::ggml::detail {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // GROUP_MAX_EPS: a group below this absmax is all zero

float from_half(std::uint16_t bits) { return half_bits_to_float(bits); }
std::uint16_t to_half(float value) { return float_to_half_bits(value); }

// The first value of largest magnitude, with its sign; its magnitude in amax (ggml's `if (ax > amax)`).
float signed_max(int n, const float* x, float& amax) {
  float max = 0;
  amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  return max;
}

// Codes l = nearest_int(iscale * x) clamped to [-nmax, nmax - 1], stored as l + offset, and their
// weighted least-squares sums: sumlx = sum w x l, suml2 = sum w l^2 (in ggml's order), w = qw[i], or x^2
// when qw is null.
void symmetric_fit(int n, int nmax, float iscale, const float* x, const float* qw, std::int8_t* L, int offset,
                   float& sumlx, float& suml2) {
  sumlx = 0;
  suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<std::int8_t>(l + offset);
    const float w = qw ? qw[i] : x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
}

}  // namespace

float make_qx_quants(int n, int nmax, const float* x, std::int8_t* L, const float* qw) {
  float amax;
  const float max = signed_max(n, x, amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, std::int8_t{0});
    return 0.f;
  }
  float sumlx, suml2;
  symmetric_fit(n, nmax, static_cast<float>(-nmax) / max, x, qw, L, nmax, sumlx, suml2);
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  std::int8_t trial[kSuperBlock];
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    symmetric_fit(n, nmax, iscale, x, qw, trial, nmax, sumlx, suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      std::copy(trial, trial + n, L);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

namespace {

// make_q3_quants with do_rmse (Q3_K): start from nmax / max, then up to 5 passes that move one code at a
// time while the weighted (x^2) least-squares fit improves.
float make_q3_quants(int n, int nmax, const float* x, std::int8_t* L) {
  float amax;
  const float max = signed_max(n, x, amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, std::int8_t{0});
    return 0.f;
  }
  float sumlx, suml2;
  symmetric_fit(n, nmax, static_cast<float>(-nmax) / max, x, nullptr, L, 0, sumlx, suml2);
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * static_cast<float>(L[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
        int new_l = nearest_int(x[i] * sl2 / slx);
        new_l = std::max(-nmax, std::min(nmax - 1, new_l));
        if (new_l != L[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<std::int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

}  // namespace

float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, std::uint8_t* L, float* the_min,
                       std::uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<std::uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i];
      const auto lf = static_cast<float>(l);
      sum_l += w * lf;
      sum_l2 += w * lf * lf;
      sum_xl += w * lf * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        std::copy(Laux, Laux + n, L);
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

namespace {

// The common part of quantize_row_q4_K_ref and _q5_K_ref: 8 groups of 32 fitted by make_qkx2_quants with
// weights rms(x) + |x|, their scales and mins quantized to 6 bits against d = max_scale / 63 and
// dmin = max_min / 63 (the codes are then recomputed by requantize_k4). kMax: 15 or 31.
template <int kMax>
void quantize_k4(const float* x, std::uint16_t& d_bits, std::uint16_t& dmin_bits, std::uint8_t* scales_out,
                 std::uint8_t* L, float rmin, int nstep) {
  std::uint8_t Laux[32];
  float weights[32];
  float mins[8];
  float scales[8];
  float max_scale = 0;
  float max_min = 0;
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] =
        make_qkx2_quants(32, kMax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::uint8_t ls[8];
  std::uint8_t lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = std::min<std::uint8_t>(63, static_cast<std::uint8_t>(nearest_int(inv_scale * scales[j])));
    lm[j] = std::min<std::uint8_t>(63, static_cast<std::uint8_t>(nearest_int(inv_min * mins[j])));
  }
  pack_scales_k4(ls, lm, scales_out);
  d_bits = to_half(max_scale / 63.f);
  dmin_bits = to_half(max_min / 63.f);
}

// Every code recomputed from the stored float16 d, dmin and 6-bit scale and min (sub-blocks whose scale
// is 0 keep their codes), as the K-quant quantizers end.
template <int kMax>
void requantize_k4(const float* x, std::uint16_t d_bits, std::uint16_t dmin_bits,
                   const std::uint8_t* scales_out, std::uint8_t* L) {
  for (int j = 0; j < 8; ++j) {
    std::uint8_t sc, m;
    scale_min_k4(j, scales_out, sc, m);
    const float d = from_half(d_bits) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = from_half(dmin_bits) * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<std::uint8_t>(std::max(0, std::min(kMax, l)));
    }
  }
}

// 2-bit codes of 128 weights in 32 bytes: weight l + 32 k in bits 2k of byte l (Q2_K's and Q3_K's qs).
template <class Code>
void pack_2bit(const Code* L, std::uint8_t* qs) {
  for (int j = 0; j < kSuperBlock; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                                (L[j + l + 96] << 6));
    }
  }
}

}  // namespace

void pack_scales_k4(const std::uint8_t* ls, const std::uint8_t* lm, std::uint8_t* out) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      out[j] = ls[j];
      out[j + 4] = lm[j];
    } else {
      out[j + 4] = static_cast<std::uint8_t>((ls[j] & 0xf) | ((lm[j] & 0xf) << 4));
      out[j - 4] |= static_cast<std::uint8_t>((ls[j] >> 4) << 6);
      out[j] |= static_cast<std::uint8_t>((lm[j] >> 4) << 6);
    }
  }
}

void pack_scales_q3_K(const std::int8_t* ls, std::uint8_t* out) {
  for (int j = 0; j < 16; ++j) {
    int l = ls[j];
    if (j < 8) {
      out[j] = static_cast<std::uint8_t>(l & 0xf);
    } else {
      out[j - 8] |= static_cast<std::uint8_t>((l & 0xf) << 4);
    }
    l >>= 4;
    out[j % 4 + 8] |= static_cast<std::uint8_t>(l << (2 * (j / 4)));
  }
}

void finish_q2_K(const float* x, std::uint8_t* L, BlockQ2_K& y) {
  for (int j = 0; j < 16; ++j) {
    const float d = from_half(y.d) * static_cast<float>(y.scales[j] & 0xf);
    if (d == 0.0f) continue;
    const float dm = from_half(y.dmin) * static_cast<float>(y.scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      const int l = nearest_int((x[16 * j + ii] + dm) / d);
      L[16 * j + ii] = static_cast<std::uint8_t>(std::max(0, std::min(3, l)));
    }
  }
  pack_2bit(L, y.qs);
}

void finish_q3_K(const float* x, std::int8_t* L, BlockQ3_K& y) {
  for (int j = 0; j < 16; ++j) {
    auto sc = static_cast<std::int8_t>(j < 8 ? y.scales[j] & 0xf : y.scales[j - 8] >> 4);
    sc = static_cast<std::int8_t>((sc | (((y.scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
    const float d = from_half(y.d) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = nearest_int(x[16 * j + ii] / d);
      L[16 * j + ii] = static_cast<std::int8_t>(std::max(-4, std::min(3, l)) + 4);
    }
  }
  // Bit 2 of code j goes to bit j / 32 of hmask[j % 32].
  for (int j = 0; j < kSuperBlock; ++j) {
    if (L[j] > 3) {
      y.hmask[j % 32] |= static_cast<std::uint8_t>(1 << (j / 32));
      L[j] = static_cast<std::int8_t>(L[j] - 4);
    }
  }
  pack_2bit(L, y.qs);
}

void finish_q4_K(const float* x, std::uint8_t* L, BlockQ4_K& y) {
  requantize_k4<15>(x, y.d, y.dmin, y.scales, L);
  for (int j = 0; j < kSuperBlock; j += 64) {
    for (int l = 0; l < 32; ++l) y.qs[j / 2 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void finish_q5_K(const float* x, std::uint8_t* L, BlockQ5_K& y) {
  requantize_k4<31>(x, y.d, y.dmin, y.scales, L);
  std::uint8_t m1 = 1, m2 = 2;
  for (int n = 0; n < kSuperBlock; n += 64) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j];
      if (l1 > 15) {
        l1 -= 16;
        y.qh[j] |= m1;
      }
      int l2 = L[n + j + 32];
      if (l2 > 15) {
        l2 -= 16;
        y.qh[j] |= m2;
      }
      y.qs[n / 2 + j] = static_cast<std::uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<std::uint8_t>(m1 << 2);
    m2 = static_cast<std::uint8_t>(m2 << 2);
  }
}

BlockQ2_K quantize_q2_K(const float* x) {
  BlockQ2_K y{};
  std::uint8_t L[kSuperBlock];
  std::uint8_t Laux[16];
  float weights[16];
  float mins[16];
  float scales[16];
  const float q4scale = 15.f;
  float max_scale = 0;
  float max_min = 0;
  for (int j = 0; j < 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] =
        make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  if (max_scale > 0) {
    const float iscale = q4scale / max_scale;
    for (int j = 0; j < 16; ++j) y.scales[j] = static_cast<std::uint8_t>(nearest_int(iscale * scales[j]));
    y.d = to_half(max_scale / q4scale);
  } else {
    y.d = to_half(0.f);
  }
  if (max_min > 0) {
    const float iscale = q4scale / max_min;
    for (int j = 0; j < 16; ++j) y.scales[j] |= static_cast<std::uint8_t>(nearest_int(iscale * mins[j]) << 4);
    y.dmin = to_half(max_min / q4scale);
  } else {
    y.dmin = to_half(0.f);
  }
  finish_q2_K(x, L, y);
  return y;
}

BlockQ3_K quantize_q3_K(const float* x) {
  BlockQ3_K y{};
  std::int8_t L[kSuperBlock];
  float scales[16];
  for (int j = 0; j < 16; ++j) scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
  float amax;
  const float max_scale = signed_max(16, scales, amax);
  if (max_scale != 0.0f) {
    const float iscale = -32.f / max_scale;
    std::int8_t ls[16];
    for (int j = 0; j < 16; ++j) {
      const auto l = static_cast<std::int8_t>(nearest_int(iscale * scales[j]));
      ls[j] = static_cast<std::int8_t>(std::max<int>(-32, std::min<int>(31, l)) + 32);
    }
    pack_scales_q3_K(ls, y.scales);
    y.d = to_half(1 / iscale);
  } else {
    y.d = to_half(0.f);
  }
  finish_q3_K(x, L, y);
  return y;
}

BlockQ4_K quantize_q4_K(const float* x) {
  BlockQ4_K y{};
  std::uint8_t L[kSuperBlock];
  quantize_k4<15>(x, y.d, y.dmin, y.scales, L, -1.f, 20);
  finish_q4_K(x, L, y);
  return y;
}

BlockQ5_K quantize_q5_K(const float* x) {
  BlockQ5_K y{};
  std::uint8_t L[kSuperBlock];
  quantize_k4<31>(x, y.d, y.dmin, y.scales, L, -0.5f, 15);
  finish_q5_K(x, L, y);
  return y;
}

BlockQ6_K quantize_q6_K(const float* x, const float* qw) {
  BlockQ6_K y{};
  std::int8_t L[kSuperBlock];
  float scales[16];
  for (int ib = 0; ib < 16; ++ib) {
    scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, qw ? qw + 16 * ib : nullptr);
  }
  float max_abs_scale;
  const float max_scale = signed_max(16, scales, max_abs_scale);
  if (max_abs_scale < kGroupMaxEps) {
    y.d = to_half(0.f);  // and every other byte 0
    return y;
  }
  const float iscale = -128.f / max_scale;
  y.d = to_half(1 / iscale);
  for (int ib = 0; ib < 16; ++ib) {
    y.scales[ib] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  }
  for (int j = 0; j < 16; ++j) {
    const float d = from_half(y.d) * static_cast<float>(y.scales[j]);
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = nearest_int(x[16 * j + ii] / d);
      L[16 * j + ii] = static_cast<std::int8_t>(std::max(-32, std::min(31, l)) + 32);
    }
  }
  std::uint8_t* ql = y.ql;
  std::uint8_t* qh = y.qh;
  for (int j = 0; j < kSuperBlock; j += 128) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l] & 0xf;
      const int q2 = L[j + l + 32] & 0xf;
      const int q3 = L[j + l + 64] & 0xf;
      const int q4 = L[j + l + 96] & 0xf;
      ql[l] = static_cast<std::uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<std::uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<std::uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                        ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
  return y;
}

}  // namespace qk::ggml::detail
