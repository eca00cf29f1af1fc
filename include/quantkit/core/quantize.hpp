// Quantize, dequantize and fake-quantize (golden README rules 5 and 6), element by element and over
// tensors with one parameter slot per tensor, channel or group. Templated on the float type; half and
// bfloat16 compute in float, double in double.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/float_traits.hpp"
#include "quantkit/core/qparams.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/core/tensor_view.hpp"

namespace qk {

// The inner loop over one slot's run of float32 values, as a policy. The core runs its own scalar loops
// (ScalarRuns: these functions are the reference); kernels/quantize_tensor.hpp supplies a policy that
// sends long float32 runs to the dispatched SIMD kernels, which give the same codes and values (tested
// against these loops). The core never calls a kernel: the kernels module calls the core.
struct ScalarRuns {
  static constexpr bool kFloat32Runs = false;
};

// Parameters of a quantized tensor: one scale and zero point per slot of its ChannelLayout.
struct QuantParams {
  QuantSpec spec;
  std::vector<float> scale;
  std::vector<std::int32_t> zero_point;
};

// Whether some zero point is not 0: a quantized file then stores its zero_point member (io/qfile.hpp), and
// a size estimate counts one int32 per slot.
inline bool stores_zero_points(const QuantParams& params) {
  for (const std::int32_t z : params.zero_point)
    if (z != 0) return true;
  return false;
}

// The reciprocal PyTorch multiplies by. Rule 5: multiply by the float32 inverse, never divide.
template <class C>
inline C inverse_scale(float scale) {
  return C(1) / static_cast<C>(scale);
}

// Rule 5: q = clamp(rint(x * inv) + zero_point, qmin, qmax). The rounding happens before the zero point
// is added; the clamp is done on rint(x*inv) against [qmin - zp, qmax - zp] so that nothing overflows.
// NaN lands on qmin, as in the reference (callers reject NaN before getting here).
template <class C>
inline std::int64_t quantize_value(C x, C inv, std::int32_t zero_point, QRange r) {
  const double rounded = static_cast<double>(std::nearbyint(x * inv));
  const double lo = static_cast<double>(r.min) - zero_point;
  const double hi = static_cast<double>(r.max) - zero_point;
  if (!(rounded >= lo)) return r.min;
  if (rounded > hi) return r.max;
  return static_cast<std::int64_t>(rounded) + zero_point;
}

// x' = float(q - zero_point) * scale: one multiply in the compute type.
template <class C>
inline C dequantize_value(std::int64_t q, float scale, std::int32_t zero_point) {
  return static_cast<C>(q - zero_point) * static_cast<C>(scale);
}

// Rule 6: the forward value, and whether the straight-through gradient passes (decided on the rounded,
// unclamped code).
template <class C>
struct FakeQuantResult {
  C value;
  bool inside;
};

template <class C>
inline FakeQuantResult<C> fake_quantize_value(C x, C inv, float scale, std::int32_t zero_point, QRange r) {
  const double rounded = static_cast<double>(std::nearbyint(x * inv));
  const double lo = static_cast<double>(r.min) - zero_point;
  const double hi = static_cast<double>(r.max) - zero_point;
  const bool inside = rounded >= lo && rounded <= hi;
  const double clamped = inside ? rounded : (rounded > hi ? hi : lo);  // NaN -> lo, as quantize_value
  // clamp(r) - zp is an integer that fits in int64; the subtraction happens before the float multiply.
  return {static_cast<C>(static_cast<std::int64_t>(clamped)) * static_cast<C>(scale), inside};
}

template <class Q>
inline void check_codes_fit(QRange r) {
  if (r.min < static_cast<std::int64_t>(std::numeric_limits<Q>::min()) ||
      r.max > static_cast<std::int64_t>(std::numeric_limits<Q>::max())) {
    throw Error("integer range [" + std::to_string(r.min) + ", " + std::to_string(r.max) +
                "] does not fit the code storage type");
  }
}

// Calls f(slot, local_begin, length) for each run of consecutive elements of [offset, offset + count)
// that share a parameter slot. local_begin counts from offset.
template <class F>
inline void for_each_slot_run(const ChannelLayout& layout, std::int64_t offset, std::int64_t count, F&& f) {
  if (count == 0) return;
  if (offset < 0 || count < 0 || offset > layout.numel - count || layout.slots <= 0 || layout.inner <= 0) {
    throw Error("chunk [" + std::to_string(offset) + ", +" + std::to_string(count) +
                ") lies outside a tensor of " + std::to_string(layout.numel) + " elements");
  }
  std::int64_t e = offset;
  const std::int64_t end = offset + count;
  while (e < end) {
    const std::int64_t block = e / layout.inner;
    const std::int64_t run_end = std::min(end, (block + 1) * layout.inner);
    f(block % layout.slots, e - offset, run_end - e);
    e = run_end;
  }
}

inline void check_params(const QuantParams& params, const ChannelLayout& layout) {
  if (static_cast<std::int64_t>(params.scale.size()) != layout.slots ||
      static_cast<std::int64_t>(params.zero_point.size()) != layout.slots) {
    throw Error("expected " + std::to_string(layout.slots) + " scales and zero points, got " +
                std::to_string(params.scale.size()) + " and " + std::to_string(params.zero_point.size()));
  }
  const QRange r = params.spec.range();
  for (std::size_t i = 0; i < params.scale.size(); ++i) {
    check_scale(params.scale[i], "scale[" + std::to_string(i) + "]",
                params.spec.range_rule == RangeRule::kFull);
    if (params.spec.scale_dtype == ScaleDType::kFloat16 && stored_scale(params.scale[i], params.spec) != params.scale[i])
      throw Error("scale[" + std::to_string(i) + "] " + std::to_string(params.scale[i]) +
                  " is not a float16 value, as the spec's float16 scales must be");
    if (params.zero_point[i] < r.min || params.zero_point[i] > r.max) {
      throw Error("zero point " + std::to_string(params.zero_point[i]) + " lies outside [" +
                  std::to_string(r.min) + ", " + std::to_string(r.max) + "]");
    }
  }
}

// The streaming functions trust their caller on the values but not on the sizes.
inline void check_chunk_sizes(std::size_t in, std::size_t out, const QuantParams& params,
                              const ChannelLayout& layout) {
  if (out != in) throw Error("output chunk size differs from the input chunk");
  if (static_cast<std::int64_t>(params.scale.size()) != layout.slots ||
      static_cast<std::int64_t>(params.zero_point.size()) != layout.slots) {
    throw Error("expected " + std::to_string(layout.slots) + " scales and zero points");
  }
}

// --- non-finite values -------------------------------------------------------------------------------

struct NonFiniteReport {
  std::int64_t count = 0;
  std::int64_t first_index = -1;  // flat C-order index of the first NaN or Inf
};

template <QuantFloat T>
inline void scan_nonfinite(std::span<const T> x, std::int64_t offset, NonFiniteReport& report) {
  std::size_t begin = 0;
  if constexpr (std::is_same_v<T, float>) {
    // Count blocks branch-free on the exponent bits (the compiler vectorizes this even for baseline
    // x86-64); only a block that holds a NaN or Inf is walked again for its first index.
    constexpr std::size_t kBlock = 1024;
    for (; begin + kBlock <= x.size(); begin += kBlock) {
      std::uint32_t bad = 0;
      for (std::size_t i = begin; i < begin + kBlock; ++i) {
        bad += (std::bit_cast<std::uint32_t>(x[i]) & 0x7f800000u) == 0x7f800000u;
      }
      if (bad == 0) continue;
      for (std::size_t i = begin; i < begin + kBlock; ++i) {
        if (!std::isfinite(x[i]) && report.count++ == 0)
          report.first_index = offset + static_cast<std::int64_t>(i);
      }
    }
  }
  for (std::size_t i = begin; i < x.size(); ++i) {
    if (!std::isfinite(to_compute(x[i]))) {
      if (report.count == 0) report.first_index = offset + static_cast<std::int64_t>(i);
      ++report.count;
    }
  }
}

// "[2, 0, 5]": the multi-index of a flat C-order index, for error messages.
inline std::string index_string(std::int64_t flat, const Shape& shape) {
  std::vector<std::int64_t> idx(shape.size());
  for (std::size_t i = shape.size(); i-- > 0;) {
    const std::int64_t d = shape[i] > 0 ? shape[i] : 1;
    idx[i] = flat % d;
    flat /= d;
  }
  std::string s = "[";
  for (std::size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + "]";
}

// Throws naming the count and first index of NaN/Inf values; what says which input.
template <QuantFloat T>
inline void reject_nonfinite(std::span<const T> x, const Shape& shape, const std::string& what) {
  NonFiniteReport report;
  scan_nonfinite<T>(x, 0, report);
  if (report.count > 0) {
    throw Error(what + ": " + std::to_string(report.count) +
                " non-finite value(s) (NaN or Inf), first at index " +
                index_string(report.first_index, shape));
  }
}

// --- streaming pieces: each works on a chunk [offset, offset + x.size()) of a C-contiguous tensor ------

// Running min/max per slot (rule 2's observer) over finite values (callers reject or filter NaN/Inf).
// mins/maxs start at +inf/-inf.
template <QuantFloat T, class Runs = ScalarRuns>
inline void observe_minmax(std::span<const T> x, const ChannelLayout& layout, std::int64_t offset,
                           std::span<float> mins, std::span<float> maxs) {
  if (static_cast<std::int64_t>(mins.size()) != layout.slots ||
      static_cast<std::int64_t>(maxs.size()) != layout.slots) {
    throw Error("observe_minmax: expected one min and max per slot");
  }
  for_each_slot_run(layout, offset, static_cast<std::int64_t>(x.size()),
                    [&](std::int64_t slot, std::int64_t begin, std::int64_t len) {
                      float lo = mins[static_cast<std::size_t>(slot)];
                      float hi = maxs[static_cast<std::size_t>(slot)];
                      if constexpr (Runs::kFloat32Runs && std::is_same_v<T, float>) {
                        if (len >= Runs::kMinRun) {
                          Runs::minmax(x.data() + begin, len, &lo, &hi);
                          mins[static_cast<std::size_t>(slot)] = lo;
                          maxs[static_cast<std::size_t>(slot)] = hi;
                          return;
                        }
                      }
                      for (std::int64_t i = begin; i < begin + len; ++i) {
                        const float v = static_cast<float>(to_compute(x[static_cast<std::size_t>(i)]));
                        lo = std::min(lo, v);
                        hi = std::max(hi, v);
                      }
                      mins[static_cast<std::size_t>(slot)] = lo;
                      maxs[static_cast<std::size_t>(slot)] = hi;
                    });
}

template <QuantFloat T, class Q, class Runs = ScalarRuns>
inline void quantize_chunk(std::span<const T> x, const ChannelLayout& layout, std::int64_t offset,
                           const QuantParams& params, std::span<Q> out) {
  using C = compute_t<T>;
  check_chunk_sizes(x.size(), out.size(), params, layout);
  const QRange r = params.spec.range();
  for_each_slot_run(layout, offset, static_cast<std::int64_t>(x.size()),
                    [&](std::int64_t slot, std::int64_t begin, std::int64_t len) {
                      const float scale = params.scale[static_cast<std::size_t>(slot)];
                      const std::int32_t zp = params.zero_point[static_cast<std::size_t>(slot)];
                      const C inv = inverse_scale<C>(scale);
                      // A run policy may take float32 into 8-bit codes; short runs (per channel on the
                      // last axis) stay here.
                      constexpr bool kRun = Runs::kFloat32Runs && std::is_same_v<T, float> &&
                                            (std::is_same_v<Q, std::int8_t> || std::is_same_v<Q, std::uint8_t>);
                      if constexpr (kRun) {
                        if (len >= Runs::kMinRun) {
                          Runs::quantize(x.data() + begin, len, inv, zp, static_cast<std::int32_t>(r.min),
                                         static_cast<std::int32_t>(r.max), out.data() + begin);
                          return;
                        }
                      }
                      for (std::int64_t i = begin; i < begin + len; ++i) {
                        const auto k = static_cast<std::size_t>(i);
                        out[k] = static_cast<Q>(quantize_value<C>(to_compute(x[k]), inv, zp, r));
                      }
                    });
}

template <class Q, QuantFloat T, class Runs = ScalarRuns>
inline void dequantize_chunk(std::span<const Q> q, const ChannelLayout& layout, std::int64_t offset,
                             const QuantParams& params, std::span<T> out) {
  using C = compute_t<T>;
  check_chunk_sizes(q.size(), out.size(), params, layout);
  for_each_slot_run(
      layout, offset, static_cast<std::int64_t>(q.size()),
      [&](std::int64_t slot, std::int64_t begin, std::int64_t len) {
        const float scale = params.scale[static_cast<std::size_t>(slot)];
        const std::int32_t zp = params.zero_point[static_cast<std::size_t>(slot)];
        constexpr bool kRun = Runs::kFloat32Runs && std::is_same_v<T, float> &&
                              (std::is_same_v<Q, std::int8_t> || std::is_same_v<Q, std::uint8_t>);
        if constexpr (kRun) {
          if (len >= Runs::kMinRun) {
            Runs::dequantize(q.data() + begin, len, scale, zp, out.data() + begin);
            return;
          }
        }
        for (std::int64_t i = begin; i < begin + len; ++i) {
          const auto k = static_cast<std::size_t>(i);
          out[k] = from_compute<T>(dequantize_value<C>(static_cast<std::int64_t>(q[k]), scale, zp));
        }
      });
}

// mask may be empty; otherwise it receives 1 where the straight-through gradient passes.
template <QuantFloat T>
inline void fake_quantize_chunk(std::span<const T> x, const ChannelLayout& layout, std::int64_t offset,
                                const QuantParams& params, std::span<T> out,
                                std::span<std::uint8_t> mask = {}) {
  using C = compute_t<T>;
  check_chunk_sizes(x.size(), out.size(), params, layout);
  if (!mask.empty() && mask.size() != x.size()) throw Error("fake_quantize: mask size differs from input");
  const QRange r = params.spec.range();
  for_each_slot_run(layout, offset, static_cast<std::int64_t>(x.size()),
                    [&](std::int64_t slot, std::int64_t begin, std::int64_t len) {
                      const float scale = params.scale[static_cast<std::size_t>(slot)];
                      const std::int32_t zp = params.zero_point[static_cast<std::size_t>(slot)];
                      const C inv = inverse_scale<C>(scale);
                      for (std::int64_t i = begin; i < begin + len; ++i) {
                        const auto k = static_cast<std::size_t>(i);
                        const auto res = fake_quantize_value<C>(to_compute(x[k]), inv, scale, zp, r);
                        out[k] = from_compute<T>(res.value);
                        if (!mask.empty()) mask[k] = res.inside ? 1 : 0;
                      }
                    });
}

// --- whole tensors -----------------------------------------------------------------------------------

inline QuantParams qparams_from_minmax(std::span<const float> mins, std::span<const float> maxs,
                                       const QuantSpec& spec) {
  QuantParams params{spec, std::vector<float>(mins.size()), std::vector<std::int32_t>(mins.size())};
  for (std::size_t i = 0; i < mins.size(); ++i) {
    // An empty slot (no elements) has nothing to observe; treat its range as [0, 0].
    const bool empty = mins[i] > maxs[i];
    const QParams p = choose_qparams(empty ? 0.0f : mins[i], empty ? 0.0f : maxs[i], spec);
    params.scale[i] = p.scale;
    params.zero_point[i] = p.zero_point;
  }
  return params;
}

// Min/max observer over one tensor, then rule 2 per slot.
template <QuantFloat T, class Runs = ScalarRuns>
inline QuantParams choose_qparams(TensorView<const T> x, const QuantSpec& spec) {
  const ChannelLayout layout = channel_layout(x.shape(), spec);
  std::vector<float> mins(static_cast<std::size_t>(layout.slots), std::numeric_limits<float>::infinity());
  std::vector<float> maxs(static_cast<std::size_t>(layout.slots), -std::numeric_limits<float>::infinity());
  reject_nonfinite<T>(x.flat(), x.shape(), "observer input");
  observe_minmax<T, Runs>(x.flat(), layout, 0, mins, maxs);
  return qparams_from_minmax(mins, maxs, spec);
}

template <QuantFloat T, class Q, class Runs = ScalarRuns>
inline void quantize(TensorView<const T> x, const QuantParams& params, std::span<Q> out) {
  const ChannelLayout layout = channel_layout(x.shape(), params.spec);
  check_params(params, layout);
  check_codes_fit<Q>(params.spec.range());
  if (static_cast<std::int64_t>(out.size()) != x.numel())
    throw Error("quantize: output size differs from input");
  reject_nonfinite<T>(x.flat(), x.shape(), "quantize input");
  quantize_chunk<T, Q, Runs>(x.flat(), layout, 0, params, out);
}

template <class Q, QuantFloat T, class Runs = ScalarRuns>
inline void dequantize(TensorView<const Q> q, const QuantParams& params, std::span<T> out) {
  const ChannelLayout layout = channel_layout(q.shape(), params.spec);
  check_params(params, layout);
  if (static_cast<std::int64_t>(out.size()) != q.numel())
    throw Error("dequantize: output size differs from input");
  dequantize_chunk<Q, T, Runs>(q.flat(), layout, 0, params, out);
}

template <QuantFloat T>
inline void fake_quantize(TensorView<const T> x, const QuantParams& params, std::span<T> out,
                          std::span<std::uint8_t> mask = {}) {
  const ChannelLayout layout = channel_layout(x.shape(), params.spec);
  check_params(params, layout);
  if (static_cast<std::int64_t>(out.size()) != x.numel() || (!mask.empty() && mask.size() != out.size())) {
    throw Error("fake_quantize: output size differs from input");
  }
  reject_nonfinite<T>(x.flat(), x.shape(), "fake_quantize input");
  fake_quantize_chunk<T>(x.flat(), layout, 0, params, out, mask);
}

// Straight-through estimator backward: dx = dy * mask, as the reference multiplies: dy where the mask
// passes, elsewhere dy * 0 (so -0 for a negative dy, NaN for a NaN dy, bit for bit the reference's zeros).
template <QuantFloat T>
inline void fake_quantize_backward(std::span<const T> dy, std::span<const std::uint8_t> mask,
                                   std::span<T> dx) {
  if (dy.size() != mask.size() || dx.size() != dy.size()) throw Error("fake_quantize_backward: sizes differ");
  for (std::size_t i = 0; i < dy.size(); ++i)
    dx[i] = mask[i] ? dy[i] : T(to_compute(dy[i]) * compute_t<T>(0));
}

}  // namespace qk
