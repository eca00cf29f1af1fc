// Internal to src/files: streaming a float .npy through the quantizers chunk by chunk (quantize_file.cpp for
// integer codes, codebook_file.cpp for FP8 and NF4).
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "quantkit/core/quantize.hpp"
#include "quantkit/files/file_error.hpp"
#include "quantkit/files/quantize_file.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/kernels/quantize_tensor.hpp"

namespace qk::detail {

// A float input, viewed in place when its layout allows, else converted once (big-endian, Fortran order).
template <class T>
struct FloatInput {
  TensorView<const T> view;
  std::vector<T> converted;
  bool in_place = false;
};

template <class F>
auto with_float_input(const io::NpyArray& array, F&& f) {
  auto run = [&]<class T>(T*) {
    FloatInput<T> in;
    if (array.is_native_c_order()) {
      in.view = array.view<T>();
      in.in_place = true;
    } else {
      in.converted = array.to_vector<T>();
      in.view = TensorView<const T>(in.converted.data(), array.shape());
    }
    return f(in);
  };
  switch (array.dtype()) {
    case io::DType::kFloat32:
      return run(static_cast<float*>(nullptr));
    case io::DType::kFloat64:
      return run(static_cast<double*>(nullptr));
    case io::DType::kFloat16:
      return run(static_cast<half*>(nullptr));
    default:
      throw Error(array.name() + ": dtype " + io::dtype_name(array.dtype()) +
                  " cannot be quantized (expected float16, float32 or float64)");
  }
}

// Calls f(chunk, offset) over the input in chunks, then releases the chunk's pages of a mapped file.
template <class T, class F>
void for_each_chunk(const io::NpyArray& array, const FloatInput<T>& in, std::int64_t chunk, F&& f) {
  const std::span<const T> all = in.view.flat();
  const auto n = static_cast<std::int64_t>(all.size());
  for (std::int64_t offset = 0; offset < n; offset += chunk) {
    const std::int64_t len = std::min(chunk, n - offset);
    f(all.subspan(static_cast<std::size_t>(offset), static_cast<std::size_t>(len)), offset);
    if (in.in_place)
      array.release(static_cast<std::size_t>(offset) * sizeof(T), static_cast<std::size_t>(len) * sizeof(T));
  }
}

inline std::int64_t aligned_chunk(std::int64_t chunk) {
  // A multiple of 8 elements keeps every chunk of packed codes on a byte boundary.
  return std::max<std::int64_t>(8, chunk / 8 * 8);
}

inline void report_progress(const FileQuantOptions& options, double fraction) {
  if (options.progress) options.progress(fraction);
}

inline std::uint64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(size);
}

// The layout of the input under the spec; an axis or group size that does not fit names the file.
inline ChannelLayout input_layout(const io::NpyArray& array, const QuantSpec& spec) {
  try {
    return channel_layout(array.shape(), spec);
  } catch (const Error& e) {
    throw Error(array.name() + ": " + e.what());
  }
}

inline void fill_report_header(const io::NpyArray& array, FileQuantReport& report) {
  report.shape = array.shape();
  report.dtype = array.dtype();
  report.numel = array.numel();
  report.input_bytes = array.header().data_bytes;
}

// Pass 1 of a file: the non-finite scan (kReject throws with the count and the first index) and, when
// `observe_range`, each slot's min and max over the finite values.
struct ObservedRange {
  std::vector<float> mins, maxs;
};

template <class T>
ObservedRange scan_file(const io::NpyArray& array, const FloatInput<T>& in, const FileQuantOptions& options,
                        const ChannelLayout& layout, FileQuantReport& report, double progress_share,
                        bool observe_range) {
  std::vector<float> mins(static_cast<std::size_t>(layout.slots), std::numeric_limits<float>::infinity());
  std::vector<float> maxs(static_cast<std::size_t>(layout.slots), -std::numeric_limits<float>::infinity());
  NonFiniteReport nonfinite;
  const std::int64_t chunk = aligned_chunk(options.chunk_elements);
  for_each_chunk(array, in, chunk, [&](std::span<const T> x, std::int64_t offset) {
    const std::int64_t before = nonfinite.count;
    scan_nonfinite<T>(x, offset, nonfinite);
    if (nonfinite.count > 0 && options.nonfinite == NonFinitePolicy::kReject) {
      // Finish counting before reporting, so the message gives the full count.
      return;
    }
    if (!observe_range) return;
    if (nonfinite.count == before) {
      kernels::observe_minmax<T>(x, layout, offset, mins, maxs);
    } else {  // saturate policy: leave NaN and Inf out of the range
      for_each_slot_run(
          layout, offset, static_cast<std::int64_t>(x.size()),
          [&](std::int64_t slot, std::int64_t b, std::int64_t len) {
            for (std::int64_t i = b; i < b + len; ++i) {
              const float v = static_cast<float>(to_compute(x[static_cast<std::size_t>(i)]));
              if (!std::isfinite(v)) continue;
              mins[static_cast<std::size_t>(slot)] = std::min(mins[static_cast<std::size_t>(slot)], v);
              maxs[static_cast<std::size_t>(slot)] = std::max(maxs[static_cast<std::size_t>(slot)], v);
            }
          });
    }
    report_progress(options, progress_share *
                                 static_cast<double>(offset + static_cast<std::int64_t>(x.size())) /
                                 static_cast<double>(std::max<std::int64_t>(1, report.numel)));
  });
  report.nonfinite = nonfinite.count;
  if (nonfinite.count > 0 && options.nonfinite == NonFinitePolicy::kReject) {
    throw FileError(array.name() + ": " + std::to_string(nonfinite.count) +
                        " non-finite value(s) (NaN or Inf), first at index " +
                        index_string(nonfinite.first_index, array.shape()),
                    FileRemedy::kSaturateNonFinite);
  }
  return {std::move(mins), std::move(maxs)};
}

// Where a quantized tensor goes: its own .npz at `output`, written atomically, or the members `prefix`q,
// `prefix`scale, ... of a checkpoint archive being assembled in `writer` (files/checkpoint_file.hpp).
struct QuantizedSink {
  std::string output;
  io::ArraySink* writer = nullptr;
  std::string prefix;
};

// Writes the encoded q member, then scale, zero_point (when not all 0), codebook and meta.
inline void write_quantized_npz(const QuantizedSink& sink, std::vector<std::byte> q_npy,
                                const io::QuantizedFileMeta& meta, const QuantParams& params) {
  if (sink.writer) {
    sink.writer->add_encoded(sink.prefix + "q", std::move(q_npy));
    io::add_quantized_params(*sink.writer, meta, params, sink.prefix);
    return;
  }
  io::NpzWriter writer;
  writer.add_encoded("q", std::move(q_npy));
  io::add_quantized_params(writer, meta, params);
  writer.write(sink.output);
}

// Fake quantization through a real file: quantize(tmp) writes a quantized .npz to a temporary beside
// `output`, which is then dequantized to `output` in `dtype` (the input's float dtype); the temporary is
// removed whatever happens. For the quantizers that have no in-place fake path (codebooks, the methods).
void fake_through_file(const std::string& output, io::DType dtype,
                       const std::function<void(const std::string&)>& quantize);

// An array read from a file into the quantizers: integer codes (quantize_file.cpp) or a codebook format
// (codebook_file.cpp). The report's output_bytes is left to the caller.
FileQuantReport quantize_array(const io::NpyArray& array, const QuantizedSink& sink, const FileQuantOptions& options);
FileQuantReport quantize_codebook_array(const io::NpyArray& array, const QuantizedSink& sink,
                                        const FileQuantOptions& options);
std::vector<float> dequantize_codebook_file(const io::QuantizedFile& file);

}  // namespace qk::detail
