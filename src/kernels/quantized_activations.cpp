// Activation quantization for the INT8/INT4 kernels: dynamic (per row or per tensor min/max, PyTorch's
// dynamic qparams, then the vectorized rule-5 quantizer) or static (calibrated parameters). Per row, the
// check, the min/max and the quantize pass run back to back on one row (16 KiB at 4096 columns), so the
// later passes read it from L1 and the input leaves memory once.
#include "quantkit/kernels/quantized_activations.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "quantkit/core/error.hpp"
#include "quantkit/core/qparams.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/minmax_kernels.hpp"
#include "quantkit/kernels/quantize_kernels.hpp"

namespace qk::kernels {

namespace {

void check_finite_row(const float* x, std::int64_t n, std::int64_t row) {
  bool bad = false;
  for (std::int64_t i = 0; i < n; ++i) bad |= !(std::fabs(x[i]) <= std::numeric_limits<float>::max());
  if (!bad) return;
  for (std::int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      throw Error("activations: non-finite value " + std::to_string(x[i]) + " at [" + std::to_string(row) +
                  ", " + std::to_string(i) + "]");
    }
  }
}

}  // namespace

void quantize_activations(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                          const ActivationQuantOptions& options, QuantizedActivations& out) {
  if (rows < 0 || cols < 0 || stride < cols || stride % QuantizedActivations::kBlock != 0) {
    throw Error("activations: bad shape or stride");
  }
  if (options.fixed) {
    const StaticActivationParams& p = *options.fixed;
    check_scale(p.scale, "static activation scale");
    if (!(0 <= p.qmin && p.qmin <= p.zero_point && p.zero_point <= p.qmax && p.qmax <= 255)) {
      throw Error("static activation parameters need 0 <= qmin <= zero_point <= qmax <= 255");
    }
  }
  out.rows = rows;
  out.cols = cols;
  out.stride = stride;
  out.codes.assign(static_cast<std::size_t>(rows * stride), 0);
  out.scales.resize(static_cast<std::size_t>(rows));
  out.zero_points.resize(static_cast<std::size_t>(rows));
  out.max_code = 0;

  auto row_range = [&](std::int64_t r, float& lo, float& hi) {
    check_finite_row(x + r * cols, cols, r);
    lo = hi = 0.0f;
    if (cols > 0) {
      lo = hi = x[r * cols];
      minmax_f32(x + r * cols, cols, &lo, &hi);
    }
  };
  // Quantizes row r with (scale, zero point) over [qmin, qmax]; hi is the row's maximum.
  auto emit_row = [&](std::int64_t r, float scale, std::int32_t zero_point, std::int32_t qmin,
                      std::int32_t qmax, float hi) {
    const auto i = static_cast<std::size_t>(r);
    out.scales[i] = scale;
    out.zero_points[i] = zero_point;
    const float inv = inverse_scale<float>(scale);
    quantize_f32_u8(x + r * cols, cols, QuantizeRun{inv, zero_point, qmin, qmax},
                    out.codes.data() + r * stride);
    // Quantization is monotonic, so the row's largest code is the code of its maximum (zero included).
    const auto top = static_cast<std::int32_t>(
        quantize_value<float>(std::max(hi, 0.0f), inv, zero_point, QRange{qmin, qmax}));
    out.max_code = std::max({out.max_code, top, zero_point});
  };
  // Rule 4 picks the qparams (over [0, 127] with reduce_range); the codes use the full uint8 range.
  auto dynamic_row = [&](std::int64_t r, float lo, float hi) {
    const DynamicQParams q = choose_qparams_dynamic(lo, hi, /*is_signed=*/false, options.reduce_range);
    emit_row(r, q.scale, q.zero_point, 0, 255, hi);
  };

  if (options.fixed) {
    const StaticActivationParams& p = *options.fixed;
    for (std::int64_t r = 0; r < rows; ++r) {
      float lo, hi;
      row_range(r, lo, hi);
      emit_row(r, p.scale, p.zero_point, p.qmin, p.qmax, hi);
    }
  } else if (options.scaling == ActivationScaling::kPerRow) {
    for (std::int64_t r = 0; r < rows; ++r) {
      float lo, hi;
      row_range(r, lo, hi);
      dynamic_row(r, lo, hi);
    }
  } else if (rows > 0) {
    float all_lo = std::numeric_limits<float>::infinity();
    float all_hi = -std::numeric_limits<float>::infinity();
    for (std::int64_t r = 0; r < rows; ++r) {
      float lo, hi;
      row_range(r, lo, hi);
      all_lo = std::min(all_lo, lo);
      all_hi = std::max(all_hi, hi);
    }
    for (std::int64_t r = 0; r < rows; ++r) dynamic_row(r, all_lo, all_hi);
  }
  const std::int64_t blocks = stride / QuantizedActivations::kBlock;
  out.block_sums.resize(static_cast<std::size_t>(rows * blocks));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::uint8_t* row = out.codes.data() + r * stride;
    for (std::int64_t b = 0; b < blocks; ++b) {
      std::int32_t sum = 0;
      for (std::int64_t k = 0; k < QuantizedActivations::kBlock; ++k)
        sum += row[b * QuantizedActivations::kBlock + k];
      out.block_sums[static_cast<std::size_t>(r * blocks + b)] = sum;
    }
  }
}

}  // namespace qk::kernels
