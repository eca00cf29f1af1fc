// GEMV on ggml's Q8_0, Q4_0 and Q4_K blocks (AVX-512 VNNI, compiled with the AVX-512 flags only). vpdpbusd
// multiplies unsigned by signed bytes and adds groups of four straight into int32, so every block sum is
// exact with no int16 step. The activations are laid out once per call to fit the weights' byte order:
// - Q8_0: two blocks per 512-bit register; the weights' codes + 128 as unsigned bytes against x's codes,
//   and 128 * sum(x's codes) per int32 lane, computed once per call, as the lane's start: exact for every
//   code, a weight code of -128 included.
// - Q4_0: two blocks per step in 256-bit registers, the unsigned nibble codes 0..15 against x as it is;
//   the -8 is 8 * sum(x's codes) per int32 lane, computed once per call and put in as the lane's start.
// - Q4_K: a super-block in two registers of codes; low nibbles against x's sub-blocks 0 and 2 (4 and 6),
//   high nibbles against 1 and 3 (5 and 7), each int32 lane (<= 4 * 15 * 127, so its low int16 is the
//   value) multiplied by its sub-block's scale with vpdpwssd; the mins from the bsums as in ggml.
// Per block (Q4_K: super-block) one fused multiply-add of the scale product, as ggml's dot products; the
// float sums differ from the scalar reference's order by rounding only (kernels/ggml_gemv.hpp's bound).
#include <immintrin.h>

#include <type_traits>
#include <vector>

#include "ggml_q4k_scales.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/kernels/ggml_gemv.hpp"
#include "simd_x86.hpp"

namespace qk::kernels {

namespace {

using ggml::BlockQ4_0;
using ggml::BlockQ4_K;
using ggml::BlockQ8_0;
using ggml::kBlock;
using ggml::kSuperBlock;

inline __m512i load64(const void* p) { return _mm512_loadu_si512(p); }
inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

inline float hsum(__m256 v) { return hsum_ps(v); }
inline float hsum(__m512 v) {
  // (GCC 12 warns inside _mm512_reduce_add_ps, so the halves are added here.)
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  return hsum_ps(_mm256_add_ps(_mm512_castps512_ps256(v), hi));
}

// ---- Q8_0 and Q4_0: two blocks of 32 per step ----

// x's Q8_0 blocks in pairs: 64 bytes of codes (as each family lays them out), the start of each int32
// lane's sum (Q4_0) and d_x in each lane; an odd last block is paired with a zero block.
struct PairedX {
  std::vector<std::uint8_t> codes;
  std::vector<std::int32_t> start;
  std::vector<float> scale;
  std::int64_t pairs;
};

// Q8_0: x's codes in block order; 16 lanes per pair, 0..7 block a and 8..15 block b, each starting at -128
// times the sum of its own four codes (the weights go in as w + 128, unsigned).
PairedX pair_x_q8_0(const BlockQ8_0* x_q, std::int64_t blocks) {
  PairedX p{{}, {}, {}, (blocks + 1) / 2};
  p.codes.assign(static_cast<std::size_t>(p.pairs * 64), 0);
  p.start.assign(static_cast<std::size_t>(p.pairs * 16), 0);
  p.scale.assign(static_cast<std::size_t>(p.pairs * 16), 0.0f);
  for (std::int64_t b = 0; b < blocks; ++b) {
    for (int j = 0; j < 32; ++j) p.codes[32 * b + j] = static_cast<std::uint8_t>(x_q[b].qs[j]);
    for (int lane = 0; lane < 8; ++lane) {
      const std::int8_t* codes = x_q[b].qs + 4 * lane;
      p.start[8 * b + lane] = -128 * (codes[0] + codes[1] + codes[2] + codes[3]);
      p.scale[8 * b + lane] = half_bits_to_float(x_q[b].d);
    }
  }
  return p;
}

// Q4_0: per pair [a's values 0..15, b's 0..15] (against the low nibbles) then [a's 16..31, b's 16..31]
// (the high nibbles), both summed into the same eight lanes: 0..3 block a, 4..7 block b. A lane starts at
// -8 times the sum of its own eight codes, so that it holds the exact sum of its eight (code - 8) * x: a
// correction spread evenly over a block's lanes would leave lanes that cancel only before rounding.
PairedX pair_x_q4_0(const BlockQ8_0* x_q, std::int64_t blocks) {
  PairedX p{{}, {}, {}, (blocks + 1) / 2};
  p.codes.assign(static_cast<std::size_t>(p.pairs * 64), 0);
  p.start.assign(static_cast<std::size_t>(p.pairs * 8), 0);
  p.scale.assign(static_cast<std::size_t>(p.pairs * 8), 0.0f);
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t pair = b / 2, half = b % 2;
    for (int j = 0; j < 32; ++j)
      p.codes[pair * 64 + (j < 16 ? 0 : 16) + 16 * half + j] = static_cast<std::uint8_t>(x_q[b].qs[j]);
    for (int lane = 0; lane < 4; ++lane) p.scale[8 * pair + 4 * half + lane] = half_bits_to_float(x_q[b].d);
  }
  for (std::int64_t lane = 0; lane < p.pairs * 8; ++lane) {
    const std::uint8_t* codes = p.codes.data() + (lane / 8) * 64 + 4 * (lane % 8);
    int sum = 0;
    for (int k = 0; k < 4; ++k)
      sum += static_cast<std::int8_t>(codes[k]) + static_cast<std::int8_t>(codes[32 + k]);
    p.start[lane] = -8 * sum;
  }
  return p;
}

// The float16 scales of two blocks a and b (b may be null: 0), converted once.
template <class Block>
inline __m128 two_scales(const Block* a, const Block* b) {
  const std::uint32_t bits = a->d | (b != nullptr ? std::uint32_t{b->d} << 16 : 0u);
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(bits)));
}

// One row, a pair of blocks per step (pair p: blocks 2p and 2p + 1, or, last of an odd count, block 2p and
// a zero block), with two accumulators taking pairs in turn: one chain of fused multiply-adds (4 cycles
// each) would bound a Q4_0 row at 36 bytes per 4 cycles, about the bus's speed. One row at a time, not
// several sharing each load of x: x stays in L1 either way, and on the machine measured (AMD EPYC,
// AVX-512 VNNI) four interleaved rows read cold 4096 x 4096 weights at half the speed of one.
template <class Acc, class Step>
float pair_row(std::int64_t per_row, Step step) {
  Acc acc[2] = {};
  const std::int64_t pairs = per_row / 2;
  std::int64_t p = 0;
  for (; p + 1 < pairs; p += 2) {
    step(p, std::true_type{}, acc[0]);
    step(p + 1, std::true_type{}, acc[1]);
  }
  if (p < pairs) step(p++, std::true_type{}, acc[0]);
  if (per_row % 2 != 0) step(p, std::false_type{}, acc[1]);
  return hsum(acc[0] + acc[1]);
}

// Q8_0, 512 bits per pair: sum (w + 128) * x - 128 * sum x, per lane, exact for any codes (a group of four
// is at most 4 * 255 * 128 before the start is added).
float q8_0_row(const BlockQ8_0* w, std::int64_t per_row, const PairedX& x) {
  const __m512i lanes = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i bias = _mm512_set1_epi8(-128);  // w ^ 0x80 = w + 128 as an unsigned byte
  return pair_row<__m512>(per_row, [&](std::int64_t p, auto full, __m512& acc) {
    const BlockQ8_0* a = w + 2 * p;
    const BlockQ8_0* b = full ? a + 1 : nullptr;
    const __m256i hi = full ? load32(b->qs) : _mm256_setzero_si256();
    const __m512i codes = _mm512_inserti64x4(_mm512_castsi256_si512(load32(a->qs)), hi, 1);
    const __m512i dot = _mm512_dpbusd_epi32(load64(x.start.data() + p * 16), _mm512_xor_si512(codes, bias),
                                            load64(x.codes.data() + p * 64));
    const __m512 dw = _mm512_permutexvar_ps(lanes, _mm512_castps128_ps512(two_scales(a, b)));
    const __m512 d = _mm512_mul_ps(dw, _mm512_loadu_ps(x.scale.data() + p * 16));
    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(dot), acc);
  });
}

// Q4_0, 256 bits per pair: the 16 code bytes of a and b side by side, low nibbles then high nibbles
// against x's two halves into the same lanes (no 512-bit insert, and the float work on 8 lanes).
float q4_0_row(const BlockQ4_0* w, std::int64_t per_row, const PairedX& x) {
  const __m256i lanes = _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  return pair_row<__m256>(per_row, [&](std::int64_t p, auto full, __m256& acc) {
    const BlockQ4_0* a = w + 2 * p;
    const BlockQ4_0* b = full ? a + 1 : nullptr;
    const __m256i packed = _mm256_inserti128_si256(_mm256_castsi128_si256(load16(a->qs)),
                                                   full ? load16(b->qs) : _mm_setzero_si128(), 1);
    const std::uint8_t* xc = x.codes.data() + p * 64;
    __m256i dot = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.start.data() + p * 8));
    dot = _mm256_dpbusd_epi32(dot, _mm256_and_si256(packed, low4), load32(xc));
    dot = _mm256_dpbusd_epi32(dot, _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4), load32(xc + 32));
    const __m256 dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(two_scales(a, b)), lanes);
    const __m256 d = _mm256_mul_ps(dw, _mm256_loadu_ps(x.scale.data() + p * 8));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot), acc);
  });
}

// ---- Q4_K: super-blocks of 256 ----

// x's Q8_K blocks laid out for the nibbles: per super-block [sub 0 | sub 2], [1 | 3], [4 | 6], [5 | 7]
// (64 bytes each), the pair sums of bsums (bsum_{2s} + bsum_{2s+1}, <= 32 * 127: int16) and d_x.
struct SuperX {
  std::vector<std::int8_t> codes;
  std::vector<std::int16_t> sub_sums;
  std::vector<float> scale;
};

SuperX super_x(const BlockQ8K* x_q, std::int64_t blocks) {
  SuperX s{std::vector<std::int8_t>(static_cast<std::size_t>(blocks * kSuperBlock)),
           std::vector<std::int16_t>(static_cast<std::size_t>(blocks * 8)),
           std::vector<float>(static_cast<std::size_t>(blocks))};
  constexpr int kOrder[8] = {0, 2, 1, 3, 4, 6, 5, 7};  // sub-block in each 32-byte slot
  for (std::int64_t b = 0; b < blocks; ++b) {
    for (int slot = 0; slot < 8; ++slot)
      for (int j = 0; j < 32; ++j)
        s.codes[b * kSuperBlock + 32 * slot + j] = x_q[b].qs[32 * kOrder[slot] + j];
    for (int sub = 0; sub < 8; ++sub)
      s.sub_sums[b * 8 + sub] = static_cast<std::int16_t>(x_q[b].bsums[2 * sub] + x_q[b].bsums[2 * sub + 1]);
    s.scale[b] = x_q[b].d;
  }
  return s;
}

float q4_k_row(const BlockQ4_K* w, std::int64_t per_row, const SuperX& x) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  // Which sub-block's scale each int32 lane of the four products takes (bytes 0..7 of the unpacked
  // scales): [0 | 2], [1 | 3], [4 | 6], [5 | 7].
  const __m512i scale_lanes[4] = {_mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0),
                                  _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
                                  _mm512_set_epi32(6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 4, 4, 4, 4),
                                  _mm512_set_epi32(7, 7, 7, 7, 7, 7, 7, 7, 5, 5, 5, 5, 5, 5, 5, 5)};
  __m512 acc = _mm512_setzero_ps();
  __m128 acc_mins = _mm_setzero_ps();
  for (std::int64_t b = 0; b < per_row; ++b) {
    const BlockQ4_K& wb = w[b];
    const std::int8_t* xc = x.codes.data() + b * kSuperBlock;
    const Q4KScales sm = unpack_q4_k_scales(wb.scales);
    // int32 scales (high int16 zero), so vpdpwssd's second product is 0 and the first the lane times it.
    const __m512i scales = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(sm.scales)));
    __m512i sum = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i packed = load64(wb.qs + 64 * h);
      const __m512i lo = _mm512_and_si512(packed, low4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low4);
      const __m512i dot_lo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, load64(xc + 128 * h));
      const __m512i dot_hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, load64(xc + 128 * h + 64));
      sum = _mm512_dpwssd_epi32(sum, dot_lo, _mm512_permutexvar_epi32(scale_lanes[2 * h], scales));
      sum = _mm512_dpwssd_epi32(sum, dot_hi, _mm512_permutexvar_epi32(scale_lanes[2 * h + 1], scales));
    }
    const __m128i mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(sm.mins)));
    acc_mins =
        _mm_fmadd_ps(_mm_set1_ps(_cvtsh_ss(wb.dmin) * x.scale[b]),
                     _mm_cvtepi32_ps(_mm_madd_epi16(mins, load16(x.sub_sums.data() + b * 8))), acc_mins);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(wb.d) * x.scale[b]), _mm512_cvtepi32_ps(sum), acc);
  }
  __m128 m = _mm_add_ps(acc_mins, _mm_movehl_ps(acc_mins, acc_mins));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return hsum(acc) - _mm_cvtss_f32(m);
}

}  // namespace

void gemv_q8_0_avx512vnni(const BlockQ8_0* w, std::int64_t rows, std::int64_t cols, const BlockQ8_0* x_q,
                          float* y) {
  const std::int64_t per_row = cols / kBlock;
  const PairedX x = pair_x_q8_0(x_q, per_row);
  for (std::int64_t r = 0; r < rows; ++r) y[r] = q8_0_row(w + r * per_row, per_row, x);
}

void gemv_q4_0_avx512vnni(const BlockQ4_0* w, std::int64_t rows, std::int64_t cols, const BlockQ8_0* x_q,
                          float* y) {
  const std::int64_t per_row = cols / kBlock;
  const PairedX x = pair_x_q4_0(x_q, per_row);
  for (std::int64_t r = 0; r < rows; ++r) y[r] = q4_0_row(w + r * per_row, per_row, x);
}

void gemv_q4_k_avx512vnni(const BlockQ4_K* w, std::int64_t rows, std::int64_t cols, const BlockQ8K* x_q,
                          float* y) {
  const std::int64_t per_row = cols / kSuperBlock;
  const SuperX x = super_x(x_q, per_row);
  for (std::int64_t r = 0; r < rows; ++r) y[r] = q4_k_row(w + r * per_row, per_row, x);
}

}  // namespace qk::kernels
