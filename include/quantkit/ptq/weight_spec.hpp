// The weight specs quantkit chooses by default: what a library caller and qtool get when they ask for
// integer weights without saying more, and the per-channel / per-group grids that format evaluation and
// mixed-precision candidates share.
#pragma once

#include <cstdint>

#include "quantkit/core/spec.hpp"
#include "quantkit/core/tensor_view.hpp"

namespace qk {

// The default spec users expect for weights: 8-bit signed symmetric, per channel on axis 0 for
// arrays of rank >= 2, per tensor for 0-d and 1-d arrays.
QuantSpec default_weight_spec(int rank);

// `bits`-bit signed symmetric weights of a layer of `shape`: per output channel (axis 0; per tensor for
// rank 0 and 1) when group_size is 0, else per group of group_size consecutive weights along the layer
// viewed as [out, rest], or along the flattened layer when the group does not divide rest. view_shape is
// the shape the spec applies to. Throws for a group size that divides neither.
QuantSpec integer_weight_spec(int bits, std::int64_t group_size, const Shape& shape, Shape& view_shape);

}  // namespace qk
