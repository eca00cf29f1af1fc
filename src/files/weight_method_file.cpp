// Outlier-aware quantization of weight files with streamed calibration activations.
#include "quantkit/files/weight_method_file.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "quantkit/core/error.hpp"
#include "quantkit/core/pack.hpp"
#include "file_streaming.hpp"
#include "quantkit/files/file_error.hpp"
#include "quantkit/files/npy_header.hpp"
#include "quantkit/files/quantize_file.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qk {

namespace {

constexpr std::int64_t kRowsPerBatch = 256;
// Shares of a GPTQ/AWQ run's progress (4096 x 4096, 1,024-4,096 calibration rows): reading the
// activations (X^T X) and RTN's output error (one pass of d H d^T); the method takes the rest.
constexpr double kReadShare = 0.15, kRtnErrorShare = 0.15;

// The output overwrites no input and can be written: checked before any work.
void check_method_output(const std::string& weights, const std::vector<std::string>& activations,
                         const std::string& output) {
  std::vector<std::string> inputs = activations;
  inputs.push_back(weights);
  io::check_output_differs(output, inputs);
  { io::AtomicFile probe(output); }  // an unwritable folder fails before the work
}

// Rows of an activation file: every leading axis flattened, the last axis must be the layer's input.
std::int64_t activation_rows(const io::NpyArray& a, std::int64_t in, const std::string& path) {
  if (a.shape().empty() || a.shape().back() != in)
    throw Error(path + ": activations of shape " + shape_string(a.shape()) + " do not end in the weight's " +
                std::to_string(in) + " inputs");
  return in > 0 ? a.numel() / in : 0;
}

// A linear layer's weight file [out, in], or a conv weight [out, in, k...] flattened to [out, in * k...]
// (its activations are then the im2col'ed patches, as demo and mixed take them), read as float32 and checked
// (rank 2 or more, every value finite) before any activation is streamed; errors name the file and, for a
// NaN/Inf, its row and column.
struct LinearWeight {
  Shape shape;
  io::DType dtype = io::DType::kFloat32;
  std::int64_t out = 0, in = 0;
  std::vector<float> w;
};

LinearWeight read_linear_weight(const std::string& path) {
  const io::NpyArray a = io::read_npy(path);
  if (a.shape().size() < 2)
    throw Error(path + ": expected a linear layer's weight [out, in] or a conv weight [out, in, k...], got shape " +
                shape_string(a.shape()));
  const std::int64_t out = a.shape()[0];
  std::int64_t in = 1;
  for (std::size_t i = 1; i < a.shape().size(); ++i) in *= a.shape()[i];
  LinearWeight lw{a.shape(), a.dtype(), out, in, a.to_vector<float>()};
  const std::int64_t width = std::max<std::int64_t>(lw.in, 1);
  for (std::size_t i = 0; i < lw.w.size(); ++i)
    if (!std::isfinite(lw.w[i]))
      throw Error(path + ": non-finite weight at row " +
                  std::to_string(static_cast<std::int64_t>(i) / width) + ", column " +
                  std::to_string(static_cast<std::int64_t>(i) % width));
  return lw;
}

}  // namespace

ActivationStats stream_activation_stats(const std::vector<std::string>& activations, std::int64_t in,
                                        bool with_hessian, const ProgressFn& progress) {
  ActivationStats stats(std::max<std::int64_t>(in, 1), with_hessian);
  std::vector<io::NpyArray> files;
  std::int64_t total_rows = 0;
  for (const std::string& path : activations) {
    files.push_back(io::read_npy(path));
    total_rows += activation_rows(files.back(), in, path);
  }
  std::int64_t done = 0;
  for (std::size_t f = 0; f < files.size(); ++f) {
    const io::NpyArray& a = files[f];
    const std::int64_t rows = activation_rows(a, in, activations[f]);
    // float32 C-order data is used in place; anything else is converted once.
    std::vector<float> converted;
    std::span<const float> values;
    if (a.dtype() == io::DType::kFloat32 && a.is_native_c_order()) {
      values = a.view<float>().flat();
    } else {
      converted = a.to_vector<float>();
      values = converted;
    }
    for (std::int64_t r = 0; r < rows; r += kRowsPerBatch) {
      const std::int64_t n = std::min(kRowsPerBatch, rows - r);
      const auto batch = values.subspan(static_cast<std::size_t>(r * in), static_cast<std::size_t>(n * in));
      // Checked here so that the message gives the row within this file.
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!std::isfinite(batch[i])) {
          throw Error(activations[f] + ": non-finite activation at row " +
                      std::to_string(r + static_cast<std::int64_t>(i) / in) + ", column " +
                      std::to_string(static_cast<std::int64_t>(i) % in));
        }
      }
      stats.add(batch, n);
      done += n;
      if (progress && total_rows > 0) progress(static_cast<double>(done) / static_cast<double>(total_rows));
    }
  }
  return stats;
}

std::vector<LayerFileError> compare_layer_files(const std::vector<std::string>& quantized,
                                                const std::string& reference,
                                                const std::vector<std::string>& activations,
                                                const ProgressFn& progress) {
  const LinearWeight ref = read_linear_weight(reference);
  const std::int64_t out = ref.out, in = ref.in;
  const std::vector<float>& w = ref.w;
  std::vector<io::QuantizedFile> files;  // all read and checked before any activation is streamed
  for (const std::string& path : quantized) {
    files.push_back(io::read_quantized(path));
    if (files.back().meta.shape != ref.shape)
      throw Error(path + ": shape " + shape_string(files.back().meta.shape) + " differs from the reference " +
                  reference + " " + shape_string(ref.shape));
  }
  SquareMatrix h;
  double signal = 0;  // ||X W^T||^2 in output_error's units, once for every file
  if (!activations.empty()) {
    ActivationStats stats = stream_activation_stats(activations, in, true, progress);
    if (stats.rows() == 0) throw Error(activations.front() + ": the activation files hold no rows");
    h = stats.take_hessian();
    signal = output_error(w, std::vector<float>(w.size(), 0.0f), out, in, h);
  }
  std::vector<LayerFileError> result;
  for (std::size_t f = 0; f < files.size(); ++f) {
    LayerFileError e;
    e.file = quantized[f];
    e.meta = files[f].meta;
    e.file_bytes = static_cast<std::uint64_t>(std::filesystem::file_size(quantized[f]));  // read just now
    e.bits_per_weight =
        w.empty() ? 0.0 : 8.0 * static_cast<double>(e.file_bytes) / static_cast<double>(w.size());
    const std::vector<float> approx = dequantize_to_float(files[f]);
    e.weight = compare(w, approx);
    if (!activations.empty()) {
      e.has_output = true;
      e.output = compare_outputs(w, approx, out, in, h, signal);
    }
    result.push_back(std::move(e));
  }
  return result;
}

MethodFileReport quantize_file_with_method(const std::string& weights,
                                           const std::vector<std::string>& activations,
                                           const std::string& output, WeightMethod method,
                                           const WeightQuantOptions& options, const ProgressFn& progress) {
  check_method_output(weights, activations, output);
  const LinearWeight wa = read_linear_weight(weights);
  MethodFileReport report;
  report.out = wa.out;
  report.in = wa.in;
  const std::vector<float>& w = wa.w;
  if (method != WeightMethod::kRtn && activations.empty())
    throw FileError(std::string(to_string(method)) + " needs calibration activations",
                    FileRemedy::kGiveActivations);

  const bool hessian = method == WeightMethod::kAwq || method == WeightMethod::kGptq;
  // The progress: reading the activations, then (with a Hessian) RTN's output error, then the method.
  const ProgressFn& whole = progress ? progress : options.progress;
  const double read_end = activations.empty() ? 0.0 : hessian ? kReadShare : 0.9;
  const double rtn_end = hessian ? read_end + kRtnErrorShare : read_end;
  ActivationStats stats =
      stream_activation_stats(activations, report.in, hessian, progress_part(whole, 0.0, read_end));
  report.calibration_rows = stats.rows();
  // H is formed once, in the accumulator's own storage (no copy), for RTN's error and the method. RTN goes
  // first, so that its whole-layer result is gone before the method's exists.
  const SquareMatrix h = hessian && stats.rows() > 0 ? stats.take_hessian() : SquareMatrix{};
  const ActivationStats* calibration = activations.empty() ? nullptr : &stats;
  WeightQuantOptions step = options;
  step.keep_dequantized = false;  // the file needs codes and parameters; errors come with the result
  try {
    if (hessian) {
      step.progress = progress_part(whole, read_end, rtn_end);
      report.rtn_output_error =
          quantize_linear(w, report.out, report.in, &stats, h, WeightMethod::kRtn, step).output_error;
    }
    step.progress = progress_part(whole, rtn_end, 1.0);
    report.result = quantize_linear(w, report.out, report.in, calibration, h, method, step);
  } catch (const Error& e) {
    throw Error(weights + ": " + e.what());
  }
  report.weight_mse = report.result.weight_error.mse;

  const QuantizedLinear& q = report.result;
  io::QuantizedFileMeta meta;
  meta.spec = q.params.spec;
  meta.range = q.params.spec.range();
  meta.code_bits = q.params.spec.bits;
  meta.shape = wa.shape;
  meta.dtype = wa.dtype;
  meta.method = io::MethodRecord{to_string(method), report.calibration_rows, q.alpha, q.output_error,
                                 report.rtn_output_error};
  io::NpzWriter writer;
  if (meta.code_bits == 8) {
    writer.add<std::int8_t>("q", wa.shape, std::span<const std::int8_t>(q.codes));
  } else {
    std::vector<std::uint8_t> packed(
        static_cast<std::size_t>(packed_bytes(static_cast<std::int64_t>(q.codes.size()), meta.code_bits)));
    pack_bits<std::int8_t>(q.codes, meta.code_bits, packed);
    writer.add<std::uint8_t>("q", {static_cast<std::int64_t>(packed.size())},
                             std::span<const std::uint8_t>(packed));
  }
  io::add_quantized_params(writer, meta, q.params);
  report.bits_per_weight = io::payload_bits_per_weight(
      meta.code_bits, meta.spec.scale_dtype, stores_zero_points(q.params),
      static_cast<std::int64_t>(q.params.scale.size()), static_cast<std::int64_t>(q.codes.size()));
  if (!q.input_scale.empty())
    writer.add<float>("input_scale", {report.in}, std::span<const float>(q.input_scale));
  writer.write(output);
  std::error_code ec;
  report.output_bytes = static_cast<std::uint64_t>(std::filesystem::file_size(output, ec));
  return report;
}

MethodFileReport fake_quantize_file_with_method(const std::string& weights,
                                                const std::vector<std::string>& activations,
                                                const std::string& output, WeightMethod method,
                                                const WeightQuantOptions& options, const ProgressFn& progress) {
  check_method_output(weights, activations, output);
  MethodFileReport report;
  detail::fake_through_file(output, read_npy_header(weights).dtype, [&](const std::string& tmp) {
    report = quantize_file_with_method(weights, activations, tmp, method, options, progress);
  });
  std::error_code ec;
  report.output_bytes = static_cast<std::uint64_t>(std::filesystem::file_size(output, ec));
  return report;
}

}  // namespace qk
