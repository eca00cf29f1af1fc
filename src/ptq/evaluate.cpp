// Evaluation of weight formats on whole models.
#include "quantkit/ptq/evaluate.hpp"

#include <algorithm>
#include <chrono>

#include "quantkit/core/half.hpp"
#include "quantkit/core/pack.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/quantize_tensor.hpp"
#include "quantkit/ptq/weight_spec.hpp"

namespace qk {

const char* to_string(WeightFormat f) {
  switch (f) {
    case WeightFormat::kFP32:
      return "fp32";
    case WeightFormat::kFP16:
      return "fp16";
    case WeightFormat::kInt8PerChannel:
      return "int8-per-channel";
    case WeightFormat::kInt4PerGroup:
      return "int4-per-group";
  }
  return "?";
}

QuantSpec format_spec(WeightFormat format, const Shape& shape, std::int64_t group_size, Shape& view_shape) {
  // The integer formats are the mixed-precision candidates "8" (per channel) and "4gG" (per group).
  if (format == WeightFormat::kInt8PerChannel) return integer_weight_spec(8, 0, shape, view_shape);
  if (format == WeightFormat::kInt4PerGroup) {
    if (group_size <= 0) throw Error("group size must be positive, got " + std::to_string(group_size));
    return integer_weight_spec(4, group_size, shape, view_shape);
  }
  view_shape = shape;
  QuantSpec spec;
  spec.scheme = Scheme::kSymmetric;
  spec.is_signed = true;
  return spec;
}

namespace {

struct LayerRun {
  std::vector<float> approx;
  std::uint64_t bytes = 0;
  std::int64_t group_size = 0;
};

LayerRun run_layer(const WeightLayer& layer, WeightFormat format, std::int64_t group_size) {
  LayerRun run;
  const std::size_t n = layer.values.size();
  run.approx.resize(n);
  if (format == WeightFormat::kFP32) {
    std::copy(layer.values.begin(), layer.values.end(), run.approx.begin());
    run.bytes = n * 4;
    return run;
  }
  if (format == WeightFormat::kFP16) {
    for (std::size_t i = 0; i < n; ++i) run.approx[i] = static_cast<float>(half(layer.values[i]));
    run.bytes = n * 2;
    return run;
  }
  Shape view_shape;
  const QuantSpec spec = format_spec(format, layer.shape, group_size, view_shape);
  const TensorView<const float> view(layer.values.data(), view_shape);
  std::vector<std::int8_t> q(n);
  const QuantParams params = kernels::observe_and_quantize<float, std::int8_t>(view, spec, q);
  kernels::dequantize<std::int8_t, float>(TensorView<const std::int8_t>(q.data(), view_shape), params, run.approx);
  // What the quantized file stores (io/qfile.hpp): a zero point per slot only when one is not 0.
  const bool zero_points = stores_zero_points(params);
  run.bytes = static_cast<std::uint64_t>(packed_bytes(static_cast<std::int64_t>(n), spec.bits)) +
              params.scale.size() * (spec.scale_dtype == ScaleDType::kFloat16 ? 2 : 4) +
              (zero_points ? params.zero_point.size() * 4 : 0);
  run.group_size = spec.granularity == Granularity::kPerGroup ? spec.group_size : 0;
  return run;
}

}  // namespace

FormatResult evaluate_format(const std::vector<WeightLayer>& layers, WeightFormat format,
                             std::int64_t group_size, int repeats) {
  FormatResult result;
  result.format = format;
  std::vector<double> times;
  std::vector<LayerRun> runs;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    const auto start = std::chrono::steady_clock::now();
    runs.clear();
    for (const auto& layer : layers) runs.push_back(run_layer(layer, format, group_size));
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  result.seconds = times[times.size() / 2];
  ErrorAccumulator total;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    total.add(layers[i].values, runs[i].approx);
    result.layers.push_back(
        {layers[i].name, runs[i].bytes, compare(layers[i].values, runs[i].approx), runs[i].group_size});
    result.bytes += runs[i].bytes;
    result.weights += layers[i].values.size();
  }
  result.error = total.result();
  result.bits_per_weight =
      result.weights ? 8.0 * static_cast<double>(result.bytes) / static_cast<double>(result.weights) : 0;
  return result;
}

}  // namespace qk
