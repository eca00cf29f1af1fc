// Dynamic activation quantization for the INT8/INT4 kernels: per row (or tensor) min/max, PyTorch's
// dynamic qparams with reduce_range, then the vectorized rule-5 quantizer. The row is read twice, but a
// row (16 KiB at 4096 columns) is still in L1/L2 for the second pass.
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
                          ActivationScaling scaling, QuantizedActivations& out) {
  if (rows < 0 || cols < 0 || stride < cols || stride % QuantizedActivations::kBlock != 0) {
    throw Error("activations: bad shape or stride");
  }
  out.rows = rows;
  out.cols = cols;
  out.stride = stride;
  out.codes.assign(static_cast<std::size_t>(rows * stride), 0);
  out.scales.resize(static_cast<std::size_t>(rows));
  out.zero_points.resize(static_cast<std::size_t>(rows));
  out.max_code = 0;

  std::vector<float> lo(static_cast<std::size_t>(rows), 0.0f), hi(static_cast<std::size_t>(rows), 0.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    check_finite_row(x + r * cols, cols, r);
    if (cols > 0) {
      float a = x[r * cols], b = x[r * cols];
      minmax_f32(x + r * cols, cols, &a, &b);
      lo[static_cast<std::size_t>(r)] = a;
      hi[static_cast<std::size_t>(r)] = b;
    }
  }
  if (scaling == ActivationScaling::kPerTensor && rows > 0) {
    const float all_lo = *std::min_element(lo.begin(), lo.end());
    const float all_hi = *std::max_element(hi.begin(), hi.end());
    std::fill(lo.begin(), lo.end(), all_lo);
    std::fill(hi.begin(), hi.end(), all_hi);
  }
  const QRange storage{0, 255};  // rule 4: reduce_range picks the qparams; codes use the full uint8 range
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto i = static_cast<std::size_t>(r);
    const DynamicQParams q = choose_qparams_dynamic(lo[i], hi[i], /*is_signed=*/false, /*reduce_range=*/true);
    out.scales[i] = q.scale;
    out.zero_points[i] = q.zero_point;
    const float inv = inverse_scale<float>(q.scale);
    quantize_f32_u8(x + r * cols, cols, QuantizeRun{inv, q.zero_point, 0, 255},
                    out.codes.data() + r * stride);
    // Quantization is monotonic, so the row's largest code is the code of its maximum (zero included).
    const auto top =
        static_cast<std::int32_t>(quantize_value<float>(std::max(hi[i], 0.0f), inv, q.zero_point, storage));
    out.max_code = std::max({out.max_code, top, q.zero_point});
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
