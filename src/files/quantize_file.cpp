// File-level PTQ: streams a memory-mapped .npy through the observer and the quantizer chunk by chunk,
// dropping each chunk's input pages once done, and writes the quantized .npz atomically. Inputs that
// cannot be viewed in place (big-endian, Fortran order, misaligned) are converted once, whole.
#include "quantkit/files/quantize_file.hpp"

#include <cmath>
#include <filesystem>
#include <limits>
#include <variant>
#include <vector>

#include "file_streaming.hpp"
#include "quantkit/core/pack.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/files/file_kind.hpp"
#include "quantkit/files/npy_header.hpp"
#include "quantkit/files/tensor_input.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/kernels/quantize_tensor.hpp"

namespace qk {

namespace {

using detail::aligned_chunk;
using detail::file_size_or_zero;
using detail::fill_report_header;
using detail::FloatInput;
using detail::for_each_chunk;
using detail::input_layout;
using detail::ObservedRange;
using detail::report_progress;
using detail::scan_file;
using detail::with_float_input;

// Pass 1: non-finite scan and (unless parameters are fixed) the min/max observer.
template <class T>
QuantParams observe(const io::NpyArray& array, const FloatInput<T>& in, const FileQuantOptions& options,
                    const ChannelLayout& layout, FileQuantReport& report, double progress_share) {
  const QuantSpec& spec = options.spec;
  const bool observe_range = !options.fixed_params.has_value() && !options.given_params.has_value();
  const ObservedRange seen = scan_file(array, in, options, layout, report, progress_share, observe_range);
  const std::vector<float>& mins = seen.mins;
  const std::vector<float>& maxs = seen.maxs;
  if (options.given_params) {
    QuantParams params = *options.given_params;
    params.spec = spec;
    try {
      check_params(params, layout);
    } catch (const Error& e) {
      throw Error(array.name() + ": the given parameters do not fit this tensor: " + e.what());
    }
    return params;
  }
  if (!observe_range) {
    if (spec.granularity != Granularity::kPerTensor)
      throw Error("a fixed scale and zero point need per-tensor quantization");
    const QParams p = *options.fixed_params;
    QuantParams params{spec, {p.scale}, {p.zero_point}};
    check_params(params, layout);
    return params;
  }
  try {
    return qparams_from_minmax(mins, maxs, spec);
  } catch (const Error& e) {  // e.g. a float64 value beyond the float32 range
    throw Error(array.name() + ": " + e.what());
  }
}

void check_spec_for_file(const QuantSpec& spec) {
  spec.validate();
  if (spec.storage_bits() > 8)
    throw Error("quantized files hold codes of at most 8 bits; the range needs " +
                std::to_string(spec.storage_bits()));
}

// AWQ / SmoothQuant files: the codes quantize W * input_scale along the last axis; undo it.
template <class T>
void divide_by_input_scale(const io::QuantizedFile& file, std::span<T> out) {
  if (file.input_scale.empty()) return;
  const std::size_t in = file.input_scale.size();
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<T>(static_cast<float>(out[i]) / file.input_scale[i % in]);
}

}  // namespace

std::vector<float> dequantize_to_float(const io::QuantizedFile& file) {
  if (is_codebook(file.meta.element)) {
    std::vector<float> out = detail::dequantize_codebook_file(file);
    divide_by_input_scale(file, std::span<float>(out));
    return out;
  }
  const ChannelLayout layout = channel_layout(file.meta.shape, file.meta.spec);
  const std::vector<std::int32_t> codes = io::unpack_codes(file);
  std::vector<float> out(codes.size());
  kernels::dequantize_chunk<std::int32_t, float>(codes, layout, 0, file.params, out);
  divide_by_input_scale(file, std::span<float>(out));
  return out;
}

FileQuantReport quantize_file(const std::string& input, const std::string& output,
                              const FileQuantOptions& options) {
  io::check_output_differs(output, {tensor_input_path(input)});
  if (!is_codebook(options.element)) check_spec_for_file(options.spec);
  { io::AtomicFile probe(output); }  // fail on an unwritable folder before the work, not after
  const io::NpyArray array = read_tensor_input(input);
  FileQuantReport report = is_codebook(options.element)
                               ? detail::quantize_codebook_array(array, {output, nullptr, ""}, options)
                               : detail::quantize_array(array, {output, nullptr, ""}, options);
  report.output_bytes = file_size_or_zero(output);
  return report;
}

FileQuantReport detail::quantize_array(const io::NpyArray& array, const QuantizedSink& sink,
                                       const FileQuantOptions& options) {
  check_spec_for_file(options.spec);
  FileQuantReport report;
  fill_report_header(array, report);
  const ChannelLayout layout = input_layout(array, options.spec);
  report.slots = layout.slots;
  report.code_bits = options.spec.storage_bits();
  report.range = options.spec.range();

  with_float_input(array, [&]<class T>(const FloatInput<T>& in) {
    const QuantParams params = observe(array, in, options, layout, report, 0.5);
    const int bits = report.code_bits;
    const io::DType code_dtype =
        bits < 8 ? io::DType::kUint8 : (options.spec.is_signed ? io::DType::kInt8 : io::DType::kUint8);
    const Shape q_shape = bits < 8 ? Shape{packed_bytes(report.numel, bits)} : array.shape();
    std::vector<std::byte> npy = io::encode_npy_header(code_dtype, q_shape);
    const std::size_t data_at = npy.size();
    npy.resize(data_at + static_cast<std::size_t>(packed_bytes(report.numel, bits)));
    auto* data = reinterpret_cast<std::uint8_t*>(npy.data() + data_at);
    const std::int64_t chunk = aligned_chunk(options.chunk_elements);
    auto run = [&]<class Q>(Q*) {
      std::vector<Q> codes(static_cast<std::size_t>(bits < 8 ? std::min(chunk, report.numel) : 0));
      for_each_chunk(array, in, chunk, [&](std::span<const T> x, std::int64_t offset) {
        std::span<Q> out = bits < 8 ? std::span<Q>(codes.data(), x.size())
                                    : std::span<Q>(reinterpret_cast<Q*>(data) + offset, x.size());
        kernels::quantize_chunk<T, Q>(x, layout, offset, params, out);
        if (report.nonfinite > 0) {  // saturate policy: NaN -> the zero point (dequantizes to 0)
          for (std::size_t i = 0; i < x.size(); ++i) {
            if (std::isnan(to_compute(x[i])))
              out[i] = static_cast<Q>(params.zero_point[static_cast<std::size_t>(
                  layout.slot_of(offset + static_cast<std::int64_t>(i)))]);
          }
        }
        if (bits < 8) {
          pack_bits<Q>(out, bits,
                       {data + offset * bits / 8,
                        static_cast<std::size_t>(packed_bytes(static_cast<std::int64_t>(x.size()), bits))});
        }
        report_progress(options, 0.5 + 0.5 *
                                           static_cast<double>(offset + static_cast<std::int64_t>(x.size())) /
                                           static_cast<double>(std::max<std::int64_t>(1, report.numel)));
      });
    };
    if (options.spec.is_signed)
      run(static_cast<std::int8_t*>(nullptr));
    else
      run(static_cast<std::uint8_t*>(nullptr));

    io::QuantizedFileMeta meta;
    meta.spec = options.spec;
    meta.range = report.range;
    meta.code_bits = bits;
    meta.shape = array.shape();
    meta.dtype = array.dtype();
    detail::write_quantized_npz(sink, std::move(npy), meta, params);
    report.bits_per_weight = io::payload_bits_per_weight(
        bits, meta.spec.scale_dtype, stores_zero_points(params), report.slots, report.numel);
    return 0;
  });
  return report;
}

void detail::fake_through_file(const std::string& output, io::DType dtype,
                               const std::function<void(const std::string&)>& quantize) {
  const std::string tmp = output + ".qk-fake.npz";
  struct Remove {
    std::string path;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } remove{tmp};
  quantize(tmp);
  dequantize_file(tmp, output, dtype);
}

FileQuantReport fake_quantize_file(const std::string& input, const std::string& output,
                                   const FileQuantOptions& options) {
  if (is_codebook(options.element)) {
    // The codebook quantizers write codes; dequantizing the file gives the values they stand for.
    io::check_output_differs(output, {tensor_input_path(input)});
    { io::AtomicFile probe(output); }
    const io::DType dtype = read_npy_header(input).dtype;
    FileQuantReport report;
    detail::fake_through_file(output, dtype, [&](const std::string& tmp) { report = quantize_file(input, tmp, options); });
    report.output_bytes = file_size_or_zero(output);
    report.bits_per_weight = 0;
    return report;
  }
  io::check_output_differs(output, {tensor_input_path(input)});
  options.spec.validate();
  { io::AtomicFile probe(output); }
  const io::NpyArray array = read_tensor_input(input);
  FileQuantReport report;
  fill_report_header(array, report);
  const ChannelLayout layout = input_layout(array, options.spec);
  report.slots = layout.slots;
  report.code_bits = options.spec.storage_bits();
  report.range = options.spec.range();
  with_float_input(array, [&]<class T>(const FloatInput<T>& in) {
    const QuantParams params = observe(array, in, options, layout, report, 0.5);
    std::vector<std::byte> npy = io::encode_npy_header(array.dtype(), array.shape());
    const std::size_t data_at = npy.size();
    npy.resize(data_at + static_cast<std::size_t>(report.numel) * sizeof(T));
    T* data = reinterpret_cast<T*>(npy.data() + data_at);
    for_each_chunk(
        array, in, aligned_chunk(options.chunk_elements), [&](std::span<const T> x, std::int64_t offset) {
          std::span<T> out(data + offset, x.size());
          fake_quantize_chunk<T>(x, layout, offset, params, out);
          if (report.nonfinite > 0) {
            for (std::size_t i = 0; i < x.size(); ++i) {
              if (std::isnan(to_compute(x[i]))) out[i] = T(0.0f);
            }
          }
          report_progress(options,
                          0.5 + 0.5 * static_cast<double>(offset + static_cast<std::int64_t>(x.size())) /
                                    static_cast<double>(std::max<std::int64_t>(1, report.numel)));
        });
    io::AtomicFile file(output);
    file.write(npy);
    file.commit();
    return 0;
  });
  report.output_bytes = file_size_or_zero(output);
  return report;
}

FileQuantReport dequantize_file(const std::string& input, const std::string& output, io::DType out_dtype) {
  io::check_output_differs(output, {input});
  if (out_dtype != io::DType::kFloat32 && out_dtype != io::DType::kFloat16 &&
      out_dtype != io::DType::kFloat64) {
    throw Error(std::string("dequantize writes float16, float32 or float64, not ") +
                io::dtype_name(out_dtype));
  }
  { io::AtomicFile probe(output); }
  expect_file_kind(input, FileKind::kQuantizedTensor);
  const io::QuantizedFile file = io::read_quantized(input);
  FileQuantReport report;
  report.shape = file.meta.shape;
  report.dtype = file.meta.dtype;
  report.numel = shape_numel(file.meta.shape);
  report.input_bytes = file_size_or_zero(input);
  report.code_bits = file.meta.code_bits;
  report.range = file.meta.range;
  const ChannelLayout layout = channel_layout(file.meta.shape, file.meta.spec);
  report.slots = layout.slots;
  std::vector<std::byte> npy = io::encode_npy_header(out_dtype, file.meta.shape);
  const std::size_t data_at = npy.size();
  npy.resize(data_at + static_cast<std::size_t>(report.numel) * io::dtype_size(out_dtype));
  auto write_as = [&]<class T>(T*) {
    std::span<T> out(reinterpret_cast<T*>(npy.data() + data_at), static_cast<std::size_t>(report.numel));
    // AWQ / SmoothQuant and codebook files: in float32, then one conversion.
    if (!file.input_scale.empty() || is_codebook(file.meta.element)) {
      const std::vector<float> values = dequantize_to_float(file);
      for (std::size_t i = 0; i < values.size(); ++i) out[i] = static_cast<T>(values[i]);
      return;
    }
    if (file.meta.code_bits == 8 && file.q.is_native_c_order()) {
      if (file.meta.spec.is_signed) {
        kernels::dequantize_chunk<std::int8_t, T>(file.q.view<std::int8_t>().flat(), layout, 0, file.params,
                                                  out);
      } else {
        kernels::dequantize_chunk<std::uint8_t, T>(file.q.view<std::uint8_t>().flat(), layout, 0, file.params,
                                                   out);
      }
    } else {
      const std::vector<std::int32_t> codes = io::unpack_codes(file);
      kernels::dequantize_chunk<std::int32_t, T>(codes, layout, 0, file.params, out);
    }
  };
  switch (out_dtype) {
    case io::DType::kFloat16:
      write_as(static_cast<half*>(nullptr));
      break;
    case io::DType::kFloat64:
      write_as(static_cast<double*>(nullptr));
      break;
    default:
      write_as(static_cast<float*>(nullptr));
      break;
  }
  io::AtomicFile out(output);
  out.write(npy);
  out.commit();
  report.output_bytes = file_size_or_zero(output);
  return report;
}

}  // namespace qk
