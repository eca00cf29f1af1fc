// Default weight specs and the per-channel / per-group weight grids.
#include "quantkit/ptq/weight_spec.hpp"

#include <string>

#include "quantkit/core/error.hpp"

namespace qk {

QuantSpec default_weight_spec(int rank) {
  QuantSpec spec;
  spec.bits = 8;
  spec.is_signed = true;
  spec.scheme = Scheme::kSymmetric;
  spec.granularity = rank >= 2 ? Granularity::kPerChannel : Granularity::kPerTensor;
  spec.axis = 0;
  return spec;
}

QuantSpec integer_weight_spec(int bits, std::int64_t group_size, const Shape& shape, Shape& view_shape) {
  QuantSpec spec = default_weight_spec(static_cast<int>(shape.size()));
  spec.bits = bits;
  view_shape = shape;
  if (group_size == 0) return spec;
  spec.granularity = Granularity::kPerGroup;
  spec.group_size = group_size;
  const std::int64_t numel = shape_numel(shape);
  const std::int64_t out = shape.empty() ? 1 : shape[0];
  const std::int64_t rest = out > 0 ? numel / out : 0;
  if (shape.size() >= 2 && rest % group_size == 0) {
    view_shape = {out, rest};
  } else if (numel % group_size == 0) {
    view_shape = {numel};
  } else {
    throw Error("group size " + std::to_string(group_size) + " divides neither the rows (" +
                std::to_string(rest) + ") nor the element count (" + std::to_string(numel) + ")");
  }
  return spec;
}

}  // namespace qk
