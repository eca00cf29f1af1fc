// What a weight format costs and buys on real weights: stored bytes, error against FP32 and the time to
// quantize and dequantize. Used by `qtool demo`, and the building block of mixed-precision planning.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quantkit/core/spec.hpp"
#include "quantkit/ptq/stats.hpp"
#include "quantkit/ptq/weight_layer.hpp"

namespace qk {

enum class WeightFormat { kFP32, kFP16, kInt8PerChannel, kInt4PerGroup };

const char* to_string(WeightFormat f);

struct LayerResult {
  std::string name;
  std::uint64_t bytes = 0;
  ErrorStats error;
  std::int64_t group_size = 0;  // per-group formats: the group size used for this layer
};

struct FormatResult {
  WeightFormat format = WeightFormat::kFP32;
  std::uint64_t weights = 0;  // number of weights
  std::uint64_t bytes = 0;    // stored bytes: codes, scales and (when not all 0) int32 zero points
  double bits_per_weight = 0;
  ErrorStats error;    // over all layers together
  double seconds = 0;  // median wall time of quantize + dequantize over all layers
  std::vector<LayerResult> layers;
};

// The spec a format uses for one layer. Per-group formats group along the last axis of the layer
// viewed as [out, rest]; when group_size does not divide rest, along the flattened layer instead.
QuantSpec format_spec(WeightFormat format, const Shape& shape, std::int64_t group_size, Shape& view_shape);

FormatResult evaluate_format(const std::vector<WeightLayer>& layers, WeightFormat format,
                             std::int64_t group_size = 32, int repeats = 5);

}  // namespace qk
