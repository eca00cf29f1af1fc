// The specs a quantization request gets when it names none: the one place for quantkit's defaults, so
// that a library caller and qtool quantize the same tensor the same way.
#pragma once

#include <cstdint>

#include "quantkit/core/element_format.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/ptq/weight_spec.hpp"

namespace qk {

// NF4's default block: QLoRA stores one absmax per 64 consecutive weights (core/block_formats.hpp), the
// groups the NF4 GEMV reads a file in.
inline constexpr std::int64_t kNf4DefaultGroupSize = kNf4Block;

// Weights: default_weight_spec(rank) in ptq/weight_spec.hpp (8-bit signed symmetric, per channel on axis 0
// for arrays of rank >= 2, per tensor for 0-d and 1-d arrays).

// Activations: 8-bit signed symmetric per tensor (one scale for a whole batch, as static int8 runtimes
// expect).
QuantSpec default_activation_spec();

// The spec of `element` on a tensor of `rank` when the request gives no granularity. Integer codes and
// FP8 keep the weight default (per output channel for rank >= 2, per tensor otherwise, as per-row scaled
// FP8 matmuls expect); NF4 is made for groups: kNf4DefaultGroupSize weights along the last axis.
QuantSpec default_codebook_spec(ElementFormat element, int rank);

}  // namespace qk
