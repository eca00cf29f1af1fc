// The core's tensor-level quantize, dequantize and min/max observer (core/quantize.hpp), with long
// float32 runs sent to the dispatched SIMD kernels. Same codes, values and parameters as the core's scalar
// functions (tests/kernels compare the two); this is what the library's own file and model paths call.
//
//   qk::quantize<float, std::int8_t>(x, params, out);           // core: the scalar reference
//   qk::kernels::quantize<float, std::int8_t>(x, params, out);  // same codes, SIMD where the CPU has it
#pragma once

#include <cstdint>
#include <span>

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

template <class Q, QuantFloat T>
inline void dequantize(TensorView<const Q> q, const QuantParams& params, std::span<T> out) {
  qk::dequantize<Q, T, DispatchedRuns>(q, params, out);
}

}  // namespace qk::kernels
