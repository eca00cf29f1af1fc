// ggml's importance-weighted quantizers, the path of llama.cpp's --imatrix (ggml_quantize_chunk with an
// imatrix: quantize_<type> -> quantize_row_<type>_impl in ggml-quants.c, ggml commit in
// tests/data/ggml/README.md), ported operation for operation as ggml_kquants.cpp ports the references: the
// same float32 expressions in the same order (the library is compiled with -ffp-contract=off, as ggml was
// for the golden files), the same integer stores (an int stored into a uint8_t wraps, as in C), so that the
// bytes are ggml's (tests/data/ggml/<type>.imatrix*.bin).
//
// Each weight j of a block gets the weight importance[j] * sqrt(sigma2 + x[j]^2), sigma2 the mean square
// of the row (Q4_0..Q5_1) or of the super-block (Q2_K; twice it for Q3_K, Q4_K, Q5_K); Q6_K uses
// importance[j] alone. The scales of a K-quant super-block are then fitted to 4 or 6 bits with the sums of
// their sub-blocks' weights as weights (make_qp_quants, make_qx_quants).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "ggml_kquants.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"

namespace qk::ggml::detail {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // GROUP_MAX_EPS

std::uint16_t to_half(float value) { return float_to_half_bits(value); }

// ggml's MAX and MIN macros on floats: (a > b ? a : b), (a < b ? a : b), kept as written (they differ from
// std::max and std::min on signed zeros and NaN).
float macro_max(float a, float b) { return a > b ? a : b; }

// ggml's make_qkx3_quants with weights: the same arithmetic as make_qkx2_quants with squared errors.
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, std::uint8_t* L, float* the_min,
                       std::uint8_t* Laux) {
  return make_qkx2_quants(n, nmax, x, weights, L, the_min, Laux, -0.9f, 0.05f, 36, false);
}

// ggml's make_qp_quants: codes L in [0, nmax] (a negative code wraps in the uint8_t, as in ggml) of n
// non-negative values x (the scales or mins of a super-block) and their scale, the best of 9 scales around
// nmax / max by weighted squared error, then up to 5 passes that move one code at a time while the weighted
// least-squares fit improves.
float make_qp_quants(int n, int nmax, const float* x, std::uint8_t* L, const float* qw) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = macro_max(max, x[i]);
  if (max < kGroupMaxEps) {
    std::fill(L, L + n, std::uint8_t{0});
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<std::uint8_t>(nearest_int(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * static_cast<float>(L[i]);
    best_mse += qw[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::min(nmax, nearest_int(iscale_is * x[i]));
      const float diff = x[i] - scale_is * static_cast<float>(l);
      mse += qw[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    L[i] = static_cast<std::uint8_t>(l);
    const auto lf = static_cast<float>(l);
    sumlx += qw[i] * x[i] * lf;
    suml2 += qw[i] * lf * lf;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = qw[i];
      const auto li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      float sl2 = suml2 - w * li * li;
      if (slx > 0 && sl2 > 0) {
        const int new_l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
        if (new_l != L[i]) {
          const auto nl = static_cast<float>(new_l);
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<std::uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// sum of x[j]^2 over n weights, in order (ggml's sum_x2 / sumx2).
float sum_squares(const float* x, std::int64_t n) {
  float sum = 0;
  for (std::int64_t j = 0; j < n; ++j) sum += x[j] * x[j];
  return sum;
}

// weight[j] = qw[j] * sqrt(sigma2 + x[j]^2) for j < n; returns their sum (ggml's sw[j]).
float importance_weights(int n, const float* x, const float* qw, float sigma2, float* weight) {
  float sum = 0;
  for (int l = 0; l < n; ++l) weight[l] = qw[l] * std::sqrt(sigma2 + x[l] * x[l]);
  for (int l = 0; l < n; ++l) sum += weight[l];
  return sum;
}

// The 32 codes of a Q4_0..Q5_1 block into its qs (and qh): weight j in the low nibble of qs[j], weight
// j + 16 in the high one, bit 4 of weight j in bit j of qh.
template <class Block, int kBits, class Code>
void pack_block(const Code* L, Block& b) {
  std::uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const auto xi0 = static_cast<std::uint8_t>(L[j]);
    const auto xi1 = static_cast<std::uint8_t>(L[j + 16]);
    b.qs[j] = static_cast<std::uint8_t>((xi0 & 0x0f) | ((xi1 & 0x0f) << 4));
    qh |= static_cast<std::uint32_t>((xi0 & 0x10u) >> 4) << j;
    qh |= static_cast<std::uint32_t>((xi1 & 0x10u) >> 4) << (j + 16);
  }
  if constexpr (kBits == 5) std::memcpy(b.qh, &qh, sizeof qh);
}

// quantize_row_q4_0_impl, _q5_0_impl, one block: make_qx_quants with nmax 2^(bits-1) and weights
// importance * sqrt(sigma2 + x^2).
template <class Block, int kBits>
Block quantize_symmetric(const float* x, const float* qw, float sigma2) {
  Block b{};
  float weight[kBlock];
  std::int8_t L[kBlock];
  importance_weights(kBlock, x, qw, sigma2, weight);
  b.d = to_half(make_qx_quants(kBlock, 1 << (kBits - 1), x, L, weight));
  pack_block<Block, kBits>(L, b);
  return b;
}

// quantize_row_q4_1_impl, _q5_1_impl, one block: make_qkx3_quants with nmax 2^bits - 1; m = -the_min.
template <class Block, int kBits>
Block quantize_affine(const float* x, const float* qw, float sigma2) {
  Block b{};
  float weight[kBlock];
  std::uint8_t L[kBlock];
  std::uint8_t Laux[kBlock];
  importance_weights(kBlock, x, qw, sigma2, weight);
  float min;
  const float d = make_qkx3_quants(kBlock, (1 << kBits) - 1, x, weight, L, &min, Laux);
  b.d = to_half(d);
  b.m = to_half(-min);
  pack_block<Block, kBits>(L, b);
  return b;
}

// quantize_row_q2_K_impl: 16 groups of 16 by make_qkx3_quants (nmax 3), their scales and mins to 4 bits by
// make_qp_quants weighted by the groups' weight sums.
BlockQ2_K quantize_q2_K(const float* x, const float* qw) {
  BlockQ2_K y{};
  std::uint8_t L[kSuperBlock];
  std::uint8_t Laux[16];
  float mins[16];
  float scales[16];
  float sw[16];
  float weight[16];
  std::uint8_t Ls[16];
  std::uint8_t Lm[16];
  const float sigma2 = sum_squares(x, kSuperBlock) / static_cast<float>(kSuperBlock);
  for (int j = 0; j < 16; ++j) {
    sw[j] = importance_weights(16, x + 16 * j, qw + 16 * j, sigma2, weight);
    scales[j] = make_qkx3_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux);
  }
  const float dm = make_qp_quants(16, 15, scales, Ls, sw);
  const float mm = make_qp_quants(16, 15, mins, Lm, sw);
  y.d = to_half(dm);
  y.dmin = to_half(mm);
  for (int j = 0; j < 16; ++j) y.scales[j] = static_cast<std::uint8_t>(Ls[j] | (Lm[j] << 4));
  finish_q2_K(x, L, y);
  return y;
}

// quantize_row_q3_K_impl: 16 groups of 16 by make_qx_quants (nmax 4), their scales to 6 bits by
// make_qx_quants (nmax 32) weighted by the groups' weight sums.
BlockQ3_K quantize_q3_K(const float* x, const float* qw) {
  BlockQ3_K y{};
  std::int8_t L[kSuperBlock];
  float scales[16];
  float weight[16];
  float sw[16];
  std::int8_t Ls[16];
  const float sigma2 = 2 * sum_squares(x, kSuperBlock) / static_cast<float>(kSuperBlock);
  for (int j = 0; j < 16; ++j) {
    sw[j] = importance_weights(16, x + 16 * j, qw + 16 * j, sigma2, weight);
    scales[j] = make_qx_quants(16, 4, x + 16 * j, L + 16 * j, weight);
  }
  const float d_block = make_qx_quants(16, 32, scales, Ls, sw);
  pack_scales_q3_K(Ls, y.scales);
  y.d = to_half(d_block);
  finish_q3_K(x, L, y);
  return y;
}

// quantize_row_q4_K_impl and _q5_K_impl: 8 groups of 32 by make_qkx3_quants (nmax kMax), their scales and
// mins to 6 bits by make_qp_quants weighted by the groups' weight sums. Q5_K caps the codes at 63 first;
// Q4_K does not (make_qp_quants' codes are already at most 63 unless a negative one wrapped).
template <int kMax>
void quantize_k4(const float* x, const float* qw, std::uint16_t& d_bits, std::uint16_t& dmin_bits,
                 std::uint8_t* scales_out, std::uint8_t* L) {
  std::uint8_t Laux[32];
  std::uint8_t Ls[8];
  std::uint8_t Lm[8];
  float weights[32];
  float sw[8];
  float mins[8];
  float scales[8];
  const float sigma2 = 2 * sum_squares(x, kSuperBlock) / static_cast<float>(kSuperBlock);
  for (int j = 0; j < 8; ++j) {
    sw[j] = importance_weights(32, x + 32 * j, qw + 32 * j, sigma2, weights);
    scales[j] = make_qkx3_quants(32, kMax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux);
  }
  const float d_block = make_qp_quants(8, 63, scales, Ls, sw);
  const float m_block = make_qp_quants(8, 63, mins, Lm, sw);
  if constexpr (kMax == 31) {
    for (int j = 0; j < 8; ++j) {
      Ls[j] = std::min<std::uint8_t>(63, Ls[j]);
      Lm[j] = std::min<std::uint8_t>(63, Lm[j]);
    }
  }
  pack_scales_k4(Ls, Lm, scales_out);
  d_bits = to_half(d_block);
  dmin_bits = to_half(m_block);
}

BlockQ4_K quantize_q4_K(const float* x, const float* qw) {
  BlockQ4_K y{};
  std::uint8_t L[kSuperBlock];
  quantize_k4<15>(x, qw, y.d, y.dmin, y.scales, L);
  finish_q4_K(x, L, y);
  return y;
}

BlockQ5_K quantize_q5_K(const float* x, const float* qw) {
  BlockQ5_K y{};
  std::uint8_t L[kSuperBlock];
  quantize_k4<31>(x, qw, y.d, y.dmin, y.scales, L);
  finish_q5_K(x, L, y);
  return y;
}

// Block i of the row from x + i * weights and importance + i * weights.
template <std::int64_t kWeights, class F>
void quantize_blocks(const float* x, std::int64_t n, const float* importance, std::byte* out, F quantize) {
  for (std::int64_t i = 0; i < n / kWeights; ++i) {
    const auto block = quantize(x + i * kWeights, importance + i * kWeights);
    std::memcpy(out + i * static_cast<std::int64_t>(sizeof block), &block, sizeof block);
  }
}

}  // namespace

void quantize_row_weighted(Type type, const float* x, std::int64_t n, const float* importance,
                           std::byte* out) {
  // Q4_0..Q5_1: sigma2 is the mean square of the whole row (n converted to float, as in ggml).
  const auto row_sigma2 = [&] { return sum_squares(x, n) / static_cast<float>(n); };
  switch (type) {
    case Type::kQ4_0:
      return quantize_blocks<kBlock>(x, n, importance, out,
                                     [s = row_sigma2()](const float* b, const float* w) {
                                       return quantize_symmetric<BlockQ4_0, 4>(b, w, s);
                                     });
    case Type::kQ5_0:
      return quantize_blocks<kBlock>(x, n, importance, out,
                                     [s = row_sigma2()](const float* b, const float* w) {
                                       return quantize_symmetric<BlockQ5_0, 5>(b, w, s);
                                     });
    case Type::kQ4_1:
      return quantize_blocks<kBlock>(x, n, importance, out,
                                     [s = row_sigma2()](const float* b, const float* w) {
                                       return quantize_affine<BlockQ4_1, 4>(b, w, s);
                                     });
    case Type::kQ5_1:
      return quantize_blocks<kBlock>(x, n, importance, out,
                                     [s = row_sigma2()](const float* b, const float* w) {
                                       return quantize_affine<BlockQ5_1, 5>(b, w, s);
                                     });
    case Type::kQ2_K:
      return quantize_blocks<kSuperBlock>(x, n, importance, out,
                                          [](const float* b, const float* w) { return quantize_q2_K(b, w); });
    case Type::kQ3_K:
      return quantize_blocks<kSuperBlock>(x, n, importance, out,
                                          [](const float* b, const float* w) { return quantize_q3_K(b, w); });
    case Type::kQ4_K:
      return quantize_blocks<kSuperBlock>(x, n, importance, out,
                                          [](const float* b, const float* w) { return quantize_q4_K(b, w); });
    case Type::kQ5_K:
      return quantize_blocks<kSuperBlock>(x, n, importance, out,
                                          [](const float* b, const float* w) { return quantize_q5_K(b, w); });
    case Type::kQ6_K:
      return quantize_blocks<kSuperBlock>(x, n, importance, out,
                                          [](const float* b, const float* w) { return quantize_q6_K(b, w); });
    default:
      throw Error("ggml: no importance-weighted quantizer for type id " +
                  std::to_string(static_cast<std::uint32_t>(type)));
  }
}

}  // namespace qk::ggml::detail
