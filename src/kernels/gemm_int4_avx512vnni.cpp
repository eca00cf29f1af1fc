// INT4 GEMV/GEMM (AVX-512 VNNI on 512-bit vectors). One 64-byte load of packed weights holds 128 columns:
// per 128-bit lane i, the low nibbles are columns [32i, 32i + 16) and the high nibbles [32i + 16, 32i + 32)
// (Int4Weights' packing), so with groups of 32 each lane is one group. Two vpdpbusd (u8 activation codes
// times the 0..15 nibbles, four products straight into int32) give four groups' exact sums, and one
// convert plus one FMA scales them: half the instructions per column of the 256-bit variant, whose
// per-group convert and FMA, not the unpacking, held INT4 GEMM to 0.38x of INT8's rate. A row stride of
// 64 mod 128 ends with a half step on the low two lanes (the upper two zeroed).
//
// The corrections (the activations' group sums times 8, the zero point) are gemm_int4_impl.hpp's, shared
// with the AVX2 variant. Each output takes the same steps whatever tile or thread it falls in.
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "gemm_int4_impl.hpp"
#include "isa_variants.hpp"

namespace qk::kernels {

namespace {

constexpr std::int64_t kStep = 128;  // columns per 512-bit step

// Activation codes in the order the unpacked nibbles come in: per 128 columns, [0,16) [32,48) [64,80)
// [96,112) (the low nibbles' lanes), then [16,32) [48,64) [80,96) [112,128); a last block of 64 columns
// the same rule on two lanes.
const std::uint8_t* reorder(const QuantizedActivations& x, AlignedVector<std::uint8_t>& buffer) {
  buffer.resize(x.codes.size());
  for (std::int64_t b = 0; b < x.rows; ++b) {
    const std::uint8_t* in = x.codes.data() + b * x.stride;
    std::uint8_t* out = buffer.data() + b * x.stride;
    for (std::int64_t k = 0; k < x.stride; k += kStep) {
      const std::int64_t lanes = std::min<std::int64_t>(kStep, x.stride - k) / 32;
      for (std::int64_t i = 0; i < lanes; ++i) {
        std::memcpy(out + k + 16 * i, in + k + 32 * i, 16);
        std::memcpy(out + k + 16 * (lanes + i), in + k + 32 * i + 16, 16);
      }
    }
  }
  return buffer.data();
}

struct Pair {
  __m512i lo, hi;
};

// kHalf: the last 64 columns only, in the low 256 bits.
template <bool kHalf>
inline Pair unpack(const std::uint8_t* packed) {
  const __m512i v = kHalf
                        ? _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed)))
                        : _mm512_loadu_si512(packed);
  const __m512i mask = _mm512_set1_epi8(0x0F);
  return {_mm512_and_si512(v, mask), _mm512_and_si512(_mm512_srli_epi16(v, 4), mask)};
}

template <bool kHalf>
inline Pair load_x(const std::uint8_t* codes) {
  if constexpr (kHalf)
    return {_mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes))),
            _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 32)))};
  else
    return {_mm512_loadu_si512(codes), _mm512_loadu_si512(codes + 64)};
}

// The step's group scales by lane (lane i: group 32 i / G of the step); unused lanes get group 0's.
template <int G, bool kHalf>
inline __m512 scales(const float* s) {
  constexpr int kLanes = kHalf ? 2 : 4;
  constexpr int kGroups = 32 * kLanes / G;
  if constexpr (kGroups <= 1) {
    return _mm512_set1_ps(*s);
  } else {
    const __m128 v = kGroups == 4 ? _mm_loadu_ps(s)
                                  : _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s)));
    const int l1 = 32 / G, l2 = kHalf ? 0 : 64 / G, l3 = kHalf ? 0 : 96 / G;
    const __m512i index = _mm512_setr_epi32(0, 0, 0, 0, l1, l1, l1, l1, l2, l2, l2, l2, l3, l3, l3, l3);
    return _mm512_permutexvar_ps(index, _mm512_castps128_ps512(v));
  }
}

inline __m512 scaled_dot(const Pair& x, const Pair& w, __m512 scale, __m512 acc) {
  const __m512i sum =
      _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), x.lo, w.lo), x.hi, w.hi);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, acc);
}

// GEMV: one row at a time (one sequential stream of weights), four accumulators in a fixed order.
template <int G>
void gemv_row(const Int4Job& job, std::int64_t o) {
  const Int4Weights& w = job.w;
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  const std::uint8_t* wr = w.packed.data() + o * (w.stride / 2);
  const float* sr = w.scales.data() + o * w.groups_per_row();
  // Four steps per iteration into four named accumulators: indexing an array by step & 3 made GCC keep
  // the accumulators on the stack (a load and a store per step).
  const auto step = [&](std::int64_t k, __m512 acc) {
    return scaled_dot(load_x<false>(job.codes + k), unpack<false>(wr + k / 2), scales<G, false>(sr + k / G),
                      acc);
  };
  std::int64_t k = 0;
  for (; k + 4 * kStep <= w.stride; k += 4 * kStep) {
    acc[0] = step(k, acc[0]);
    acc[1] = step(k + kStep, acc[1]);
    acc[2] = step(k + 2 * kStep, acc[2]);
    acc[3] = step(k + 3 * kStep, acc[3]);
  }
  if (k + kStep <= w.stride) acc[0] = step(k, acc[0]), k += kStep;
  if (k + kStep <= w.stride) acc[1] = step(k, acc[1]), k += kStep;
  if (k + kStep <= w.stride) acc[2] = step(k, acc[2]), k += kStep;
  if (k < w.stride)
    acc[3] = scaled_dot(load_x<true>(job.codes + k), unpack<true>(wr + k / 2), scales<G, true>(sr + k / G),
                        acc[3]);
  int4_store(
      job, 0, o,
      _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]))));
}

// One step of an R x B tile: each weight row unpacked once, then used against the B activation rows.
template <int G, bool kHalf, int R, int B>
inline void tile_step(const std::uint8_t* wp, std::int64_t w_row_bytes, const float* sp, std::int64_t groups,
                      const std::uint8_t* xp, std::int64_t x_stride, std::int64_t k, __m512 (&acc)[R][B]) {
  Pair nibbles[R];
  __m512 scale[R];
  for (int r = 0; r < R; ++r) {
    nibbles[r] = unpack<kHalf>(wp + r * w_row_bytes + k / 2);
    scale[r] = scales<G, kHalf>(sp + r * groups + k / G);
  }
  for (int b = 0; b < B; ++b) {
    const Pair xv = load_x<kHalf>(xp + b * x_stride + k);
    for (int r = 0; r < R; ++r) acc[r][b] = scaled_dot(xv, nibbles[r], scale[r], acc[r][b]);
  }
}

// GEMM: R weight rows against B activation rows, one accumulator per output.
template <int G, int R, int B>
void tile(const Int4Job& job, std::int64_t b0, std::int64_t o0) {
  const Int4Weights& w = job.w;
  const std::int64_t groups = w.groups_per_row();
  __m512 acc[R][B];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) acc[r][b] = _mm512_setzero_ps();
  const std::uint8_t* wp = w.packed.data() + o0 * (w.stride / 2);
  const std::uint8_t* xp = job.codes + b0 * job.x.stride;
  const float* sp = w.scales.data() + o0 * groups;
  std::int64_t k = 0;
  for (; k + kStep <= w.stride; k += kStep)
    tile_step<G, false, R, B>(wp, w.stride / 2, sp, groups, xp, job.x.stride, k, acc);
  if (k < w.stride) tile_step<G, true, R, B>(wp, w.stride / 2, sp, groups, xp, job.x.stride, k, acc);
  for (int b = 0; b < B; ++b)
    for (int r = 0; r < R; ++r) int4_store(job, b0 + b, o0 + r, _mm512_reduce_add_ps(acc[r][b]));
}

// --- GEMM from an unpacked panel ---------------------------------------------------------------------
// For a batch of kPanelMinBatch or more, each panel of kPanelRows weight rows is unpacked once into signed
// codes (nibble - 8) in a group-major order and then multiplied against every activation row, so the
// unpacking cost is shared by the whole batch. Per 512 columns ("super-block"), vector v holds in int32
// lane j the codes of columns 4v..4v+3 of the super-block's group j (groups of 32; for G = 64 or 128
// lanes j cover a half or a quarter of group 32j / G). Eight vpdpbusd then leave each lane with one whole
// group's exact sum, and a single convert and FMA apply 16 group scales at once: eight integer dot
// products per convert + FMA instead of two, which is what brings INT4 GEMM close to INT8's rate (INT8
// does the same eight vpdpbusd per 512 columns). Signed codes need no correction for the nibble offset.
constexpr std::int64_t kSuper = 512;
// 3 x 4: twelve integer sums and twelve float accumulators, three weight vectors and one activation
// vector in the 32 registers (measured at batch 64, g32, 4096^2 on the EPYC: 3 x 4 0.90x of INT8 GEMM's
// rate, 2 x 4 0.71x, 4 x 4 with the float accumulators in L1 0.61x).
constexpr int kPanelRows = 3, kPanelBatch = 4;
constexpr std::int64_t kPanelMinBatch = 8;

std::int64_t super_padded(std::int64_t stride) { return (stride + kSuper - 1) / kSuper * kSuper; }

// Activation codes of each row in the panel order (zero beyond the stride).
const std::uint8_t* panel_activations(const QuantizedActivations& x, AlignedVector<std::uint8_t>& buffer) {
  const std::int64_t padded = super_padded(x.stride);
  buffer.assign(static_cast<std::size_t>(x.rows * padded), 0);
  for (std::int64_t b = 0; b < x.rows; ++b) {
    const std::uint8_t* in = x.codes.data() + b * x.stride;
    std::uint8_t* out = buffer.data() + b * padded;
    for (std::int64_t c = 0; c < x.stride; c += 4) {  // four columns c..c+3 of group c / 32
      const std::int64_t sb = c / kSuper, j = c % kSuper / 32, v = c % 32 / 4;
      std::memcpy(out + sb * kSuper + v * 64 + j * 4, in + c, 4);
    }
  }
  return buffer.data();
}

// Rows [o, o + rows) of W as signed codes in the panel order, `padded` bytes per row.
void unpack_panel(const Int4Weights& w, std::int64_t o, int rows, std::int64_t padded, std::int8_t* out) {
  const __m512i mask = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
  // A load holds four groups, one per 128-bit lane; this reorders its dwords as [dword 0 of lanes 0..3,
  // dword 1 of lanes 0..3, ...], so that 128-bit lane d gathers dword d (columns 4d..4d+3) of four groups.
  const __m512i by_dword = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (int r = 0; r < rows; ++r) {
    const std::uint8_t* packed = w.packed.data() + (o + r) * (w.stride / 2);
    std::int8_t* dst = out + r * padded;
    for (std::int64_t sb = 0; sb < padded; sb += kSuper) {
      __m512i lo[4], hi[4];
      for (int q = 0; q < 4; ++q) {  // 128 columns, four groups, per load; none past the row's end
        const std::int64_t begin = sb + 128 * q;
        const std::int64_t bytes = std::clamp<std::int64_t>((w.stride - begin) / 2, 0, 64);
        const __mmask64 valid = bytes >= 64 ? ~__mmask64{0} : (__mmask64{1} << bytes) - 1;
        const __m512i v = _mm512_maskz_loadu_epi8(valid, packed + std::min(begin, w.stride) / 2);
        lo[q] = _mm512_permutexvar_epi32(by_dword, _mm512_sub_epi8(_mm512_and_si512(v, mask), eight));
        hi[q] = _mm512_permutexvar_epi32(
            by_dword, _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), mask), eight));
      }
      // A 4 x 4 transpose of 128-bit lanes: vector d gets lane d of lo[0..3] (columns 4d.. of 16 groups).
      for (int half = 0; half < 2; ++half) {
        const __m512i* p = half == 0 ? lo : hi;
        const __m512i t0 = _mm512_shuffle_i32x4(p[0], p[1], 0x44),
                      t1 = _mm512_shuffle_i32x4(p[0], p[1], 0xEE);
        const __m512i t2 = _mm512_shuffle_i32x4(p[2], p[3], 0x44),
                      t3 = _mm512_shuffle_i32x4(p[2], p[3], 0xEE);
        std::int8_t* d = dst + sb + half * 256;
        _mm512_storeu_si512(d, _mm512_shuffle_i32x4(t0, t2, 0x88));
        _mm512_storeu_si512(d + 64, _mm512_shuffle_i32x4(t0, t2, 0xDD));
        _mm512_storeu_si512(d + 128, _mm512_shuffle_i32x4(t1, t3, 0x88));
        _mm512_storeu_si512(d + 192, _mm512_shuffle_i32x4(t1, t3, 0xDD));
      }
    }
  }
}

// The 16 lanes' group scales of one super-block of row scales `s` (groups_left of them remain in the row).
template <int G>
inline __m512 panel_scales(const float* s, std::int64_t groups_left) {
  constexpr int kGroups = static_cast<int>(kSuper / G);
  const int n = static_cast<int>(std::min<std::int64_t>(kGroups, groups_left));
  const __m512 v = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), s);
  if constexpr (G == 32) return v;
  constexpr int kShift = G == 64 ? 1 : 2;  // lane j holds part of group j >> kShift
  const __m512i index =
      _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), kShift);
  return _mm512_permutexvar_ps(index, v);
}

// R panel rows against B activation rows: R x B integer sums and as many float accumulators, R weight
// vectors and one activation vector in registers.
template <int G, int R, int B>
void panel_tile(const Int4Job& job, const std::int8_t* panel, std::int64_t padded, std::int64_t o0,
                std::int64_t b0) {
  const Int4Weights& w = job.w;
  const std::int64_t groups = w.groups_per_row();
  __m512 acc[R][B];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) acc[r][b] = _mm512_setzero_ps();
  const std::uint8_t* xp = job.codes + b0 * padded;
  for (std::int64_t sb = 0; sb < padded; sb += kSuper) {
    __m512i sum[R][B];
    for (int r = 0; r < R; ++r)
      for (int b = 0; b < B; ++b) sum[r][b] = _mm512_setzero_si512();
    for (int v = 0; v < 8; ++v) {
      __m512i wv[R];
      for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_si512(panel + r * padded + sb + 64 * v);
      for (int b = 0; b < B; ++b) {
        const __m512i xv = _mm512_loadu_si512(xp + b * padded + sb + 64 * v);
        for (int r = 0; r < R; ++r) sum[r][b] = _mm512_dpbusd_epi32(sum[r][b], xv, wv[r]);
      }
    }
    const std::int64_t g0 = sb / G;
    for (int r = 0; r < R; ++r) {
      const __m512 scale = panel_scales<G>(w.scales.data() + (o0 + r) * groups + g0, groups - g0);
      for (int b = 0; b < B; ++b)
        acc[r][b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[r][b]), scale, acc[r][b]);
    }
  }
  for (int b = 0; b < B; ++b) {
    const auto bi = static_cast<std::size_t>(b0 + b);
    const float zero_point = static_cast<float>(job.x.zero_points[bi]);
    for (int r = 0; r < R; ++r) {
      const auto o = static_cast<std::size_t>(o0 + r);
      job.y[(b0 + b) * w.rows + o0 + r] =
          job.x.scales[bi] * (_mm512_reduce_add_ps(acc[r][b]) - zero_point * w.zero_point_terms[o]);
    }
  }
}

template <int G, int R>
void panel_rows(const Int4Job& job, const std::int8_t* panel, std::int64_t padded, std::int64_t o) {
  std::int64_t b = 0;
  for (; b + kPanelBatch <= job.x.rows; b += kPanelBatch)
    panel_tile<G, R, kPanelBatch>(job, panel, padded, o, b);
  for (; b < job.x.rows; ++b) panel_tile<G, R, 1>(job, panel, padded, o, b);
}

template <int G>
void panel_run(const Int4Job& job, std::int64_t row_begin, std::int64_t row_end) {
  thread_local AlignedVector<std::int8_t> panel;
  const std::int64_t padded = super_padded(job.w.stride);
  panel.resize(static_cast<std::size_t>(kPanelRows * padded));
  std::int64_t o = row_begin;
  for (; o + kPanelRows <= row_end; o += kPanelRows) {
    unpack_panel(job.w, o, kPanelRows, padded, panel.data());
    panel_rows<G, kPanelRows>(job, panel.data(), padded, o);
  }
  for (; o < row_end; ++o) {
    unpack_panel(job.w, o, 1, padded, panel.data());
    panel_rows<G, 1>(job, panel.data(), padded, o);
  }
}

// Batches below kPanelMinBatch: 2 rows of W x 4 rows of X per register tile, unpacking as it goes.
constexpr int kTileRows = 2, kTileBatch = 4;

template <int G, int R>
void tile_rows(const Int4Job& job, std::int64_t o) {
  std::int64_t b = 0;
  for (; b + kTileBatch <= job.x.rows; b += kTileBatch) tile<G, R, kTileBatch>(job, b, o);
  for (; b < job.x.rows; ++b) tile<G, R, 1>(job, b, o);
}

template <int G>
void run(const Int4Job& job, std::int64_t row_begin, std::int64_t row_end) {
  std::int64_t o = row_begin;
  if (job.x.rows == 1) {
    for (; o < row_end; ++o) gemv_row<G>(job, o);
    return;
  }
  for (; o + kTileRows <= row_end; o += kTileRows) tile_rows<G, kTileRows>(job, o);
  for (; o < row_end; ++o) tile_rows<G, 1>(job, o);
}

// Calls run(std::integral_constant<int, G>) for the weights' group size (32, 64 or 128).
template <class Run>
void with_group_size(std::int64_t group_size, Run&& run) {
  if (group_size == 32)
    run(std::integral_constant<int, 32>{});
  else if (group_size == 64)
    run(std::integral_constant<int, 64>{});
  else
    run(std::integral_constant<int, 128>{});
}

}  // namespace

void gemm_int4_avx512vnni(const QuantizedActivations& x, const Int4Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y) {
  thread_local std::vector<float> sums;
  thread_local AlignedVector<std::uint8_t> codes;
  if (x.rows >= kPanelMinBatch) {
    const Int4Job job{x, w, panel_activations(x, codes), nullptr, y};
    with_group_size(w.group_size, [&](auto g) { panel_run<decltype(g)::value>(job, row_begin, row_end); });
  } else {
    const Int4Job job{x, w, reorder(x, codes), int4_group_sums8(x, w, sums), y};
    with_group_size(w.group_size, [&](auto g) { run<decltype(g)::value>(job, row_begin, row_end); });
  }
}

}  // namespace qk::kernels
