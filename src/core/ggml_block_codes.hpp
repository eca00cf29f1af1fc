// Internal to src/core: the code loops of ggml's 32-weight block quantizers (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0),
// bit for bit as ggml's C compiles on x86-64, four weights at a time with SSE2 (in every x86-64 CPU, so
// no dispatch). ggml's scalar loops convert each weight with a cvttss2si; with a branch to make that
// conversion defined in C++, quantkit's were a third slower than ggml's.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#define QK_GGML_CODES_SSE2 1
#endif

namespace qk::ggml::detail {

// C's (int)f as x86 computes it (cvttss2si): INT32_MIN for NaN and values out of range. ggml's
// references convert floats to small integer types this way ((int8_t)f: the low byte); a block of tiny
// weights whose scale inverse overflows to inf meets the out-of-range case.
inline std::int32_t truncate_to_int32(float f) {
  if (!(f > -2147483904.0f && f < 2147483648.0f)) return INT32_MIN;
  return static_cast<std::int32_t>(f);
}
inline std::int8_t to_int8(float f) { return static_cast<std::int8_t>(truncate_to_int32(f)); }
inline std::uint8_t to_uint8(float f) { return static_cast<std::uint8_t>(truncate_to_int32(f)); }

constexpr int kCodesPerBlock = 32;

#ifdef QK_GGML_CODES_SSE2
// (int8_t) of each int32 lane, sign-extended back to 32 bits.
inline __m128i low_byte_signed(__m128i i) { return _mm_srai_epi32(_mm_slli_epi32(i, 24), 24); }
inline __m128i min_epi32(__m128i a, __m128i b) {  // SSE2 has no pminsd
  const __m128i gt = _mm_cmpgt_epi32(a, b);
  return _mm_or_si128(_mm_and_si128(gt, b), _mm_andnot_si128(gt, a));
}
// 16 int32 lanes, each within [-128, 127], as 16 bytes.
inline void store_signed_bytes(__m128i a, __m128i b, __m128i c, __m128i d, void* out) {
  _mm_storeu_si128(static_cast<__m128i*>(out), _mm_packs_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d)));
}
// 16 int32 lanes, each within [0, 255], as 16 bytes.
inline void store_unsigned_bytes(__m128i a, __m128i b, __m128i c, __m128i d, void* out) {
  _mm_storeu_si128(static_cast<__m128i*>(out),
                   _mm_packus_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d)));
}
#endif

// The first value of largest magnitude, with its sign (ggml: `if (amax < fabsf(v)) { amax = fabsf(v);
// max = v; }`, so a later value of the same magnitude does not replace it, and an all-zero block gives
// +0.0 whatever the zeros' signs). Inputs are finite (quantize_row checks). With SSE2: the largest
// magnitude first, then the first lane that holds it, with no branch per weight.
inline float signed_absmax(const float* x) {
#ifdef QK_GGML_CODES_SSE2
  const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
  __m128 m = _mm_setzero_ps();
  for (int j = 0; j < kCodesPerBlock; j += 4) m = _mm_max_ps(m, _mm_and_ps(_mm_loadu_ps(x + j), abs_mask));
  m = _mm_max_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
  m = _mm_max_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
  if (_mm_cvtss_f32(m) == 0.0f) return 0.0f;
  for (int j = 0; j < kCodesPerBlock; j += 4) {
    const int hit = _mm_movemask_ps(_mm_cmpeq_ps(_mm_and_ps(_mm_loadu_ps(x + j), abs_mask), m));
    if (hit) return x[j + __builtin_ctz(static_cast<unsigned>(hit))];
  }
  return 0.0f;  // not reached
#else
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kCodesPerBlock; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
#endif
}

// ggml's `if (v < min) min = v; if (v > max) max = v;` from +-FLT_MAX: the first value equal to the
// minimum (and to the maximum), which decides the sign of a zero. Inputs are finite.
inline void min_max(const float* x, float& min, float& max) {
#ifdef QK_GGML_CODES_SSE2
  __m128 lo = _mm_set1_ps(3.402823466e+38f), hi = _mm_set1_ps(-3.402823466e+38f);
  for (int j = 0; j < kCodesPerBlock; j += 4) {
    const __m128 v = _mm_loadu_ps(x + j);
    lo = _mm_min_ps(v, lo);
    hi = _mm_max_ps(v, hi);
  }
  lo = _mm_min_ps(lo, _mm_shuffle_ps(lo, lo, _MM_SHUFFLE(1, 0, 3, 2)));
  lo = _mm_min_ps(lo, _mm_shuffle_ps(lo, lo, _MM_SHUFFLE(2, 3, 0, 1)));
  hi = _mm_max_ps(hi, _mm_shuffle_ps(hi, hi, _MM_SHUFFLE(1, 0, 3, 2)));
  hi = _mm_max_ps(hi, _mm_shuffle_ps(hi, hi, _MM_SHUFFLE(2, 3, 0, 1)));
  min = _mm_cvtss_f32(lo);
  max = _mm_cvtss_f32(hi);
  // Only a zero can differ from the first equal value (its sign); take that value itself.
  if (min == 0.0f || max == 0.0f)
    for (int j = 0; j < kCodesPerBlock; ++j)
      if (x[j] == 0.0f) {
        if (min == 0.0f) min = x[j];
        if (max == 0.0f) max = x[j];
        break;
      }
#else
  min = 3.402823466e+38f;
  max = -3.402823466e+38f;
  for (int j = 0; j < kCodesPerBlock; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
#endif
}

// codes[j] = min(cap, (int8_t)(x[j] * id + add)) as a byte: Q4_0 / Q5_0 (add 2^(bits-1) + 0.5).
inline void scaled_codes(const float* x, float id, float add, int cap, std::uint8_t* codes) {
#ifdef QK_GGML_CODES_SSE2
  const __m128 vid = _mm_set1_ps(id), vadd = _mm_set1_ps(add);
  const __m128i vcap = _mm_set1_epi32(cap);
  for (int j = 0; j < kCodesPerBlock; j += 16) {
    __m128i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m128 v = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(x + j + 4 * k), vid), vadd);
      q[k] = min_epi32(low_byte_signed(_mm_cvttps_epi32(v)), vcap);
    }
    store_signed_bytes(q[0], q[1], q[2], q[3], codes + j);
  }
#else
  for (int j = 0; j < kCodesPerBlock; ++j)
    codes[j] = static_cast<std::uint8_t>(std::min<int>(cap, to_int8(x[j] * id + add)));
#endif
}

// v = (x[j] - min) * id + 0.5; Q4_1: min(15, (int8_t)v); Q5_1: (uint8_t)v.
template <int kBits>
void affine_codes(const float* x, float min, float id, std::uint8_t* codes) {
#ifdef QK_GGML_CODES_SSE2
  const __m128 vmin = _mm_set1_ps(min), vid = _mm_set1_ps(id), half = _mm_set1_ps(0.5f);
  for (int j = 0; j < kCodesPerBlock; j += 16) {
    __m128i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m128 v = _mm_add_ps(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(x + j + 4 * k), vmin), vid), half);
      const __m128i t = _mm_cvttps_epi32(v);
      q[k] = kBits == 4 ? min_epi32(low_byte_signed(t), _mm_set1_epi32(15))
                        : _mm_and_si128(t, _mm_set1_epi32(0xff));
    }
    if constexpr (kBits == 4)
      store_signed_bytes(q[0], q[1], q[2], q[3], codes + j);
    else
      store_unsigned_bytes(q[0], q[1], q[2], q[3], codes + j);
  }
#else
  for (int j = 0; j < kCodesPerBlock; ++j) {
    const float v = (x[j] - min) * id + 0.5f;
    codes[j] = kBits == 4 ? static_cast<std::uint8_t>(std::min<int>(15, to_int8(v))) : to_uint8(v);
  }
#endif
}

// qs[j] = (int8_t)roundf(x[j] * id): Q8_0. roundf rounds halves away from zero; with SSE2 the truncated
// value moves one step away from zero when the remainder is at least one half (exact: the remainder of a
// float below 2^31 and its truncation is representable), except in lanes the conversion found invalid
// (NaN, +-inf, |v| >= 2^31), which keep INT32_MIN as roundf then cvttss2si would.
inline void rounded_codes(const float* x, float id, std::int8_t* qs) {
#ifdef QK_GGML_CODES_SSE2
  const __m128 vid = _mm_set1_ps(id), plus_half = _mm_set1_ps(0.5f), minus_half = _mm_set1_ps(-0.5f);
  const __m128i invalid = _mm_set1_epi32(INT32_MIN);
  for (int j = 0; j < kCodesPerBlock; j += 16) {
    __m128i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m128 v = _mm_mul_ps(_mm_loadu_ps(x + j + 4 * k), vid);
      __m128i t = _mm_cvttps_epi32(v);
      const __m128 rest = _mm_sub_ps(v, _mm_cvtepi32_ps(t));
      const __m128i valid = _mm_xor_si128(_mm_cmpeq_epi32(t, invalid), _mm_set1_epi32(-1));
      const __m128i up = _mm_and_si128(_mm_castps_si128(_mm_cmpge_ps(rest, plus_half)), valid);
      const __m128i down = _mm_and_si128(_mm_castps_si128(_mm_cmple_ps(rest, minus_half)), valid);
      t = _mm_add_epi32(_mm_sub_epi32(t, up), down);  // masks are -1: subtracting one adds 1
      q[k] = low_byte_signed(t);
    }
    store_signed_bytes(q[0], q[1], q[2], q[3], qs + j);
  }
#else
  for (int j = 0; j < kCodesPerBlock; ++j) qs[j] = to_int8(std::round(x[j] * id));
#endif
}

// Low 4 bits: weight j in the low nibble of qs[j], weight j + 16 in the high nibble.
inline void pack_nibbles(const std::uint8_t* codes, std::uint8_t* qs) {
#ifdef QK_GGML_CODES_SSE2
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + 16));
  const __m128i packed =
      _mm_or_si128(_mm_and_si128(lo, _mm_set1_epi8(0x0f)),
                   _mm_and_si128(_mm_slli_epi16(hi, 4), _mm_set1_epi8(static_cast<char>(0xf0))));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), packed);
#else
  for (int j = 0; j < kCodesPerBlock / 2; ++j)
    qs[j] = static_cast<std::uint8_t>((codes[j] & 0x0f) | ((codes[j + kCodesPerBlock / 2] & 0x0f) << 4));
#endif
}

// Bit 4 of the codes (5-bit types): bit j of the little-endian qh.
inline void pack_high_bits(const std::uint8_t* codes, std::uint8_t* qh) {
  std::uint32_t bits = 0;
#ifdef QK_GGML_CODES_SSE2
  // Shifted left by 3, bit 4 of every byte becomes its top bit, which movemask collects.
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + 16));
  bits = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_slli_epi16(lo, 3))) |
         static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_slli_epi16(hi, 3))) << 16;
#else
  for (int j = 0; j < kCodesPerBlock; ++j) bits |= static_cast<std::uint32_t>((codes[j] & 0x10u) >> 4) << j;
#endif
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<std::uint8_t>(bits >> (8 * k));
}

}  // namespace qk::ggml::detail
