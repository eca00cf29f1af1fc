// The core's tensor-level quantize, dequantize and min/max observer (core/quantize.hpp), with long
// float32 runs sent to the dispatched SIMD kernels. Same codes, values and parameters as the core's scalar
// functions (tests/kernels compare the two); this is what the library's own file and model paths call.
//
//   qk::quantize<float, std::int8_t>(x, params, out);           // core: the scalar reference
//   qk::kernels::quantize<float, std::int8_t>(x, params, out);  // same codes, SIMD where the CPU has it
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/dequantize_kernels.hpp"
#include "quantkit/kernels/minmax_kernels.hpp"
#include "quantkit/kernels/quantize_kernels.hpp"

namespace qk::kernels {

// The run policy of core/quantize.hpp backed by the dispatched kernels.
struct DispatchedRuns {
  static constexpr bool kFloat32Runs = true;
  // Shorter runs (per channel along the last axis of a narrow tensor) cost more to dispatch than to loop.
  static constexpr std::int64_t kMinRun = 32;

  static void minmax(const float* x, std::int64_t n, float* lo, float* hi) { minmax_f32(x, n, lo, hi); }
  static void quantize(const float* x, std::int64_t n, float inv, std::int32_t zero_point, std::int32_t qmin,
                       std::int32_t qmax, std::int8_t* out) {
    quantize_f32_i8(x, n, QuantizeRun{inv, zero_point, qmin, qmax}, out);
  }
  static void quantize(const float* x, std::int64_t n, float inv, std::int32_t zero_point, std::int32_t qmin,
                       std::int32_t qmax, std::uint8_t* out) {
    quantize_f32_u8(x, n, QuantizeRun{inv, zero_point, qmin, qmax}, out);
  }
  static void dequantize(const std::int8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                         float* out) {
    dequantize_i8_f32(q, n, scale, zero_point, out);
  }
  static void dequantize(const std::uint8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                         float* out) {
    dequantize_u8_f32(q, n, scale, zero_point, out);
  }
};

template <QuantFloat T>
inline void observe_minmax(std::span<const T> x, const ChannelLayout& layout, std::int64_t offset,
                           std::span<float> mins, std::span<float> maxs) {
  qk::observe_minmax<T, DispatchedRuns>(x, layout, offset, mins, maxs);
}

template <QuantFloat T, class Q>
inline void quantize_chunk(std::span<const T> x, const ChannelLayout& layout, std::int64_t offset,
                           const QuantParams& params, std::span<Q> out) {
  qk::quantize_chunk<T, Q, DispatchedRuns>(x, layout, offset, params, out);
}

template <class Q, QuantFloat T>
inline void dequantize_chunk(std::span<const Q> q, const ChannelLayout& layout, std::int64_t offset,
                             const QuantParams& params, std::span<T> out) {
  qk::dequantize_chunk<Q, T, DispatchedRuns>(q, layout, offset, params, out);
}

template <QuantFloat T>
inline QuantParams choose_qparams(TensorView<const T> x, const QuantSpec& spec) {
  return qk::choose_qparams<T, DispatchedRuns>(x, spec);
}

template <QuantFloat T, class Q>
inline void quantize(TensorView<const T> x, const QuantParams& params, std::span<Q> out) {
  qk::quantize<T, Q, DispatchedRuns>(x, params, out);
}

// Observe (rule 2's min/max per slot) and quantize, with the same parameters and codes as choose_qparams
// followed by quantize, but reading the tensor from memory once or twice instead of four times (that pair
// scans for NaN/Inf, observes, scans again and quantizes, each a full sweep). The tensor is walked in
// chunks of at most kObserveChunk elements, each scanned and observed while it sits in the core's L1/L2.
// When every slot is one contiguous run (per tensor, per channel on axis 0, per group), whole runs are
// observed and then quantized a chunk at a time: for runs of at most kObserveChunk elements (a 4096-wide
// weight row is 4096; groups are shorter) the chunk is still cached, so the whole operation is one sweep.
// Otherwise (per channel on a later axis, whose slots interleave) the quantize is a second sweep. A NaN or
// Inf throws the message choose_qparams gives, naming the count and first index over the whole tensor.
inline constexpr std::int64_t kObserveChunk = 32 * 1024;  // elements: 128 KiB of float32

template <QuantFloat T, class Q>
inline QuantParams observe_and_quantize(TensorView<const T> x, const QuantSpec& spec, std::span<Q> out) {
  const ChannelLayout layout = channel_layout(x.shape(), spec);
  check_codes_fit<Q>(spec.range());
  if (static_cast<std::int64_t>(out.size()) != x.numel())
    throw Error("quantize: output size differs from input");
  const std::span<const T> flat = x.flat();
  const auto slots = static_cast<std::size_t>(layout.slots);
  std::vector<float> mins(slots, std::numeric_limits<float>::infinity());
  std::vector<float> maxs(slots, -std::numeric_limits<float>::infinity());
  QuantParams params{spec, std::vector<float>(slots), std::vector<std::int32_t>(slots)};
  // Scans and observes elements [begin, end) chunk by chunk.
  const auto observe = [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t c = begin; c < end; c += kObserveChunk) {
      const auto chunk = flat.subspan(static_cast<std::size_t>(c),
                                      static_cast<std::size_t>(std::min(kObserveChunk, end - c)));
      NonFiniteReport report;
      scan_nonfinite<T>(chunk, c, report);
      if (report.count > 0) reject_nonfinite<T>(flat, x.shape(), "observer input");
      qk::observe_minmax<T, DispatchedRuns>(chunk, layout, c, mins, maxs);
    }
  };
  const auto set_params = [&](std::size_t s) {
    const bool empty = mins[s] > maxs[s];  // as qparams_from_minmax: an empty slot's range is [0, 0]
    const QParams p = qk::choose_qparams(empty ? 0.0f : mins[s], empty ? 0.0f : maxs[s], spec);
    params.scale[s] = p.scale;
    params.zero_point[s] = p.zero_point;
  };
  if (layout.numel > 0 && layout.slots * layout.inner == layout.numel) {
    // Whole slots per step: one long run, or as many short ones (groups) as fit a chunk.
    const std::int64_t per_step = std::max<std::int64_t>(1, kObserveChunk / layout.inner);
    for (std::int64_t s0 = 0; s0 < layout.slots; s0 += per_step) {
      const std::int64_t s1 = std::min(layout.slots, s0 + per_step);
      const std::int64_t begin = s0 * layout.inner;
      const auto n = static_cast<std::size_t>((s1 - s0) * layout.inner);
      observe(begin, s1 * layout.inner);
      for (std::int64_t s = s0; s < s1; ++s) set_params(static_cast<std::size_t>(s));
      qk::quantize_chunk<T, Q, DispatchedRuns>(flat.subspan(static_cast<std::size_t>(begin), n), layout,
                                               begin, params,
                                               out.subspan(static_cast<std::size_t>(begin), n));
    }
    return params;
  }
  observe(0, layout.numel);
  for (std::size_t s = 0; s < slots; ++s) set_params(s);
  qk::quantize_chunk<T, Q, DispatchedRuns>(flat, layout, 0, params, out);
  return params;
}

template <class Q, QuantFloat T>
inline void dequantize(TensorView<const Q> q, const QuantParams& params, std::span<T> out) {
  qk::dequantize<Q, T, DispatchedRuns>(q, params, out);
}

}  // namespace qk::kernels
