// QuantSpec: what a quantization is (bits or explicit integer range, signedness, scheme, reduce_range,
// granularity) and the effective integer range it implies (golden README rule 1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "quantkit/core/error.hpp"
#include "quantkit/core/tensor_view.hpp"

namespace qk {

enum class Scheme { kAffine, kSymmetric };
enum class Granularity { kPerTensor, kPerChannel, kPerGroup };
// How a scale is stored: float32, or float16 as ggml's blocks and GPTQ/AWQ checkpoints store it. A
// float16 scale is rounded before any code is computed with it, so codes and stored scale agree.
enum class ScaleDType { kFloat32, kFloat16 };
// The symmetric range rule. kPyTorch (the default, bit-exact with PyTorch): scale = amax / ((qmax - qmin) /
// 2), e.g. amax / 7.5 at 4 bits, so +amax rounds to 8 and clamps to 7. kFull (ggml's Q4_0 rule): the
// value of largest magnitude m maps exactly to qmin, scale = m / qmin, negative when m is positive, so
// the whole range of codes is used; signed symmetric codes only.
enum class RangeRule { kPyTorch, kFull };

struct QRange {
  std::int64_t min = 0;
  std::int64_t max = 0;
  bool operator==(const QRange&) const = default;
};

inline const char* to_string(Scheme s) { return s == Scheme::kAffine ? "affine" : "symmetric"; }
inline const char* to_string(Granularity g) {
  switch (g) {
    case Granularity::kPerTensor:
      return "per_tensor";
    case Granularity::kPerChannel:
      return "per_channel";
    case Granularity::kPerGroup:
      return "per_group";
  }
  return "?";
}
inline const char* to_string(ScaleDType d) { return d == ScaleDType::kFloat32 ? "float32" : "float16"; }
inline const char* to_string(RangeRule r) { return r == RangeRule::kPyTorch ? "pytorch" : "full"; }

struct QuantSpec {
  int bits = 8;           // 2..8 when no explicit range is given
  bool is_signed = true;  // storage signedness (int8 vs uint8 codes)
  Scheme scheme = Scheme::kSymmetric;
  bool reduce_range = false;              // halve the range (FBGEMM's 7-bit activations)
  std::optional<std::int64_t> quant_min;  // explicit range; both or neither
  std::optional<std::int64_t> quant_max;
  Granularity granularity = Granularity::kPerTensor;
  int axis = 0;                 // channel axis for kPerChannel (negative counts from the end)
  std::int64_t group_size = 0;  // for kPerGroup: consecutive elements along the last axis
  ScaleDType scale_dtype = ScaleDType::kFloat32;
  RangeRule range_rule = RangeRule::kPyTorch;

  bool has_explicit_range() const { return quant_min.has_value() || quant_max.has_value(); }

  // Rule 1: the effective integer range.
  QRange range() const {
    validate();
    QRange r;
    if (has_explicit_range()) {
      r = {*quant_min, *quant_max};
    } else if (is_signed) {
      r = {-(std::int64_t{1} << (bits - 1)), (std::int64_t{1} << (bits - 1)) - 1};
    } else {
      r = {0, (std::int64_t{1} << bits) - 1};
    }
    if (reduce_range) r = {floor_half(r.min), floor_half(r.max)};
    return r;
  }

  // Bits per stored code: the requested bits, or for an explicit range the fewest bits whose signed
  // (two's complement) or unsigned range holds it.
  int storage_bits() const {
    if (!has_explicit_range()) return bits;
    const QRange r = range();
    for (int b = 1; b <= 32; ++b) {
      const std::int64_t lo = is_signed ? -(std::int64_t{1} << (b - 1)) : 0;
      const std::int64_t hi = is_signed ? (std::int64_t{1} << (b - 1)) - 1 : (std::int64_t{1} << b) - 1;
      if (r.min >= lo && r.max <= hi) return b;
    }
    return 32;
  }

  // Rule 2's special case: unsigned symmetric with the default 8-bit range centres on 128.
  bool is_default_uint8() const { return !is_signed && !has_explicit_range() && bits == 8 && !reduce_range; }

  void validate() const {
    if (has_explicit_range()) {
      if (!quant_min || !quant_max) throw Error("quant_min and quant_max must be given together");
      if (!(*quant_min <= 0 && 0 <= *quant_max && *quant_min < *quant_max)) {
        throw Error("explicit range [" + std::to_string(*quant_min) + ", " + std::to_string(*quant_max) +
                    "] must satisfy quant_min <= 0 <= quant_max and quant_min < quant_max");
      }
      if (*quant_min < INT32_MIN || *quant_max > INT32_MAX) throw Error("explicit range exceeds int32");
      if (!is_signed && *quant_min < 0) throw Error("unsigned storage cannot hold a negative quant_min");
    } else if (bits < 2 || bits > 8) {
      throw Error("bits must be between 2 and 8, got " + std::to_string(bits));
    }
    if (!is_signed && scheme == Scheme::kSymmetric && reduce_range) {
      throw Error("unsigned symmetric quantization with reduce_range is not supported (as in PyTorch)");
    }
    if (range_rule == RangeRule::kFull && !(scheme == Scheme::kSymmetric && is_signed)) {
      throw Error("the full range rule needs signed symmetric codes");
    }
    if (granularity == Granularity::kPerGroup && group_size <= 0) {
      throw Error("per-group quantization needs a positive group size");
    }
  }

 private:
  static std::int64_t floor_half(std::int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }
};

// "per-tensor", "per-channel (axis A)" or "per-group (G)".
inline std::string describe_granularity(const QuantSpec& spec) {
  switch (spec.granularity) {
    case Granularity::kPerTensor:
      return "per-tensor";
    case Granularity::kPerChannel:
      return "per-channel (axis " + std::to_string(spec.axis) + ")";
    case Granularity::kPerGroup:
      return "per-group (" + std::to_string(spec.group_size) + ")";
  }
  return "?";
}

// How the elements of a C-contiguous tensor map to parameter slots. Element e belongs to slot
// (e / inner) % slots. Per-tensor is one slot; per-channel on axis a has inner = prod(shape[a+1:]);
// per-group views the tensor as [numel / G, G] and uses one slot per row of that view.
struct ChannelLayout {
  std::int64_t slots = 1;
  std::int64_t inner = 1;
  std::int64_t numel = 0;
  std::int64_t slot_of(std::int64_t e) const { return (e / inner) % slots; }
};

inline int normalize_axis(int axis, int rank) {
  const int a = axis < 0 ? axis + rank : axis;
  if (rank == 0 || a < 0 || a >= rank) {
    throw Error("axis " + std::to_string(axis) + " is out of range for a tensor of rank " +
                std::to_string(rank));
  }
  return a;
}

// The row that groups of `group_size` run along: the last axis when the group divides it; otherwise, for a
// tensor of rank 3 or more (a conv weight [out, in, kh, kw]), the flattened row [out, rest] that demo and
// mixed also quantize, so groups of 32 work on a 3x3 conv. Elements are C-ordered either way, so group g
// is elements [g * G, (g + 1) * G) in both cases; only the scale array's shape differs (io/qfile.hpp).
inline std::int64_t group_row_length(const Shape& shape, std::int64_t group_size) {
  if (shape.empty()) throw Error("per-group quantization needs at least one dimension");
  const std::int64_t last = shape.back();
  if (group_size > 0 && last % group_size == 0) return last;
  std::int64_t rest = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) rest *= shape[i];
  if (shape.size() >= 3 && group_size > 0 && rest % group_size == 0) return rest;
  if (shape.size() >= 3)
    throw Error("group size " + std::to_string(group_size) + " divides neither the last axis (" +
                std::to_string(last) + ") nor the flattened row (" + std::to_string(rest) + ")");
  throw Error("group size " + std::to_string(group_size) + " does not divide the last axis (" +
              std::to_string(last) + ")");
}

inline ChannelLayout channel_layout(const Shape& shape, const QuantSpec& spec) {
  ChannelLayout layout;
  layout.numel = shape_numel(shape);
  const int rank = static_cast<int>(shape.size());
  switch (spec.granularity) {
    case Granularity::kPerTensor:
      layout.slots = 1;
      layout.inner = layout.numel > 0 ? layout.numel : 1;
      break;
    case Granularity::kPerChannel: {
      const int a = normalize_axis(spec.axis, rank);
      layout.slots = shape[static_cast<std::size_t>(a)];
      layout.inner = 1;
      for (int i = a + 1; i < rank; ++i) layout.inner *= shape[static_cast<std::size_t>(i)];
      if (layout.inner == 0) layout.inner = 1;
      break;
    }
    case Granularity::kPerGroup: {
      if (rank == 0) throw Error("per-group quantization needs at least one dimension");
      (void)group_row_length(shape, spec.group_size);  // throws when the group fits no row
      layout.inner = spec.group_size;
      layout.slots = layout.numel / spec.group_size;
      break;
    }
  }
  return layout;
}

}  // namespace qk
