// Static and dynamic activation quantization.
//
// - Dynamic: parameters computed on the fly from each batch, per tensor or per row (per token), fused with
//   the quantize pass: kernels::quantize_activations with ActivationQuantOptions{scaling, reduce_range}.
//   It is what kernels::gemm does for INT8/INT4 weights unless GemmOptions::static_activations is set.
// - Static: parameters fixed by calibration (calib/calibration.hpp) and applied at run time: convert them
//   with static_activation_params() and pass them as ActivationQuantOptions::fixed or
//   GemmOptions::static_activations. Plain tensors can also use qk::quantize() with the calibrated
//   QuantParams directly.
#pragma once

#include <string>

#include "quantkit/core/error.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/quantized_activations.hpp"

namespace qk {

// The uint8 form the INT8/INT4 kernels consume of a per-tensor calibration. A signed (int8) calibration
// is the same grid shifted by 128: code c with zero point z means (c - z) * scale, as does c + 128 with
// z + 128, so the values are identical.
inline kernels::StaticActivationParams static_activation_params(const QuantParams& calibrated) {
  if (calibrated.scale.size() != 1 || calibrated.zero_point.size() != 1) {
    throw Error("static activation quantization needs a per-tensor calibration, got " +
                std::to_string(calibrated.scale.size()) + " scales");
  }
  const QRange r = calibrated.spec.range();
  const std::int64_t shift = r.min < 0 ? 128 : 0;
  if (r.min + shift < 0 || r.max + shift > 255) {
    throw Error("static activations need codes that fit 8 bits, the calibration uses [" +
                std::to_string(r.min) + ", " + std::to_string(r.max) + "]");
  }
  check_scale(calibrated.scale[0], "calibrated activation scale");
  return {calibrated.scale[0], static_cast<std::int32_t>(calibrated.zero_point[0] + shift),
          static_cast<std::int32_t>(r.min + shift), static_cast<std::int32_t>(r.max + shift)};
}

}  // namespace qk
