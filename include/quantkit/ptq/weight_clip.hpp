// Per-channel clipping of a weight's range, chosen by the quantization error it gives: for each slot
// (channel, group, or the whole tensor) the range [r * min, r * max] with r in {1, 1 - 1/steps, ...,
// min_ratio} whose quantize-dequantize sum of squared errors is least (r = 1 is the plain min/max, so the
// result is never worse on the weight). What ONNX Runtime's and TensorRT's "MSE" weight calibration does,
// on the weight itself. Deterministic; the codes then come from core/quantize.hpp as for any parameters.
#pragma once

#include "quantkit/core/quantize.hpp"
#include "quantkit/core/tensor_view.hpp"

namespace qk {

struct WeightClipOptions {
  int steps = 80;          // candidate ratios 1, 1 - (1 - min_ratio) / steps, ...
  double min_ratio = 0.2;  // the smallest ratio tried (steps of 0.01 by default)
};

QuantParams mse_clipped_params(TensorView<const float> x, const QuantSpec& spec,
                               const WeightClipOptions& options = {});

}  // namespace qk
