// Codebook quantization (FP8, NF4) in memory and streamed over files: pass 1 finds each slot's amax (the
// shared non-finite scan), pass 2 encodes x / scale chunk by chunk into the q member (packed for NF4).
#include <cmath>

#include "file_streaming.hpp"
#include "quantkit/core/pack.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/kernels/fp8_kernels.hpp"
#include "quantkit/ptq/codebook_quant.hpp"
#include "quantkit/ptq/quantize_file.hpp"

namespace qk {

namespace {

void check_codebook(ElementFormat element) {
  if (!is_codebook(element)) throw Error("integer codes are not a codebook format");
}

// The scale of each slot from its observed min and max (an untouched slot, all NaN or empty, gets 1).
std::vector<float> scales_from_range(const std::vector<float>& mins, const std::vector<float>& maxs,
                                     ElementFormat element, const std::string& name) {
  std::vector<float> scale(mins.size());
  for (std::size_t i = 0; i < scale.size(); ++i) {
    const float amax = mins[i] <= maxs[i] ? std::fmax(std::fabs(mins[i]), std::fabs(maxs[i])) : 0.0f;
    if (!std::isfinite(amax)) throw Error(name + ": a value lies beyond the float32 range");
    scale[i] = codebook_scale(amax, element);
  }
  return scale;
}

// Codes of one chunk; non-finite values follow the saturate rule (±Inf -> ±max, NaN -> 0).
template <class T>
void encode_chunk(std::span<const T> x, const ChannelLayout& layout, std::int64_t offset,
                  std::span<const float> scale, ElementFormat element, std::span<std::uint8_t> codes) {
  for_each_slot_run(layout, offset, static_cast<std::int64_t>(x.size()),
                    [&](std::int64_t slot, std::int64_t begin, std::int64_t len) {
                      const float s = scale[static_cast<std::size_t>(slot)];
                      for (std::int64_t i = begin; i < begin + len; ++i) {
                        const float v = static_cast<float>(to_compute(x[static_cast<std::size_t>(i)]));
                        // Division, not a reciprocal: 1/s overflows for a subnormal scale.
                        codes[static_cast<std::size_t>(i)] =
                            encode_codebook(std::isnan(v) ? 0.0f : v / s, element);
                      }
                    });
}

}  // namespace

CodebookTensor quantize_codebook(std::span<const float> x, const ChannelLayout& layout,
                                 ElementFormat element) {
  check_codebook(element);
  if (static_cast<std::int64_t>(x.size()) != layout.numel)
    throw Error(std::string(to_string(element)) + ": input size differs from its layout");
  std::vector<float> mins(static_cast<std::size_t>(layout.slots), INFINITY);
  std::vector<float> maxs(static_cast<std::size_t>(layout.slots), -INFINITY);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]))
      throw Error(std::string(to_string(element)) + " quantization input has a non-finite value at index " +
                  std::to_string(i));
  }
  kernels::observe_minmax<float>(x, layout, 0, mins, maxs);
  CodebookTensor t;
  t.element = element;
  t.scale = scales_from_range(mins, maxs, element, to_string(element));
  t.codes.resize(x.size());
  encode_chunk<float>(x, layout, 0, t.scale, element, t.codes);
  return t;
}

void dequantize_codebook(std::span<const std::uint8_t> codes, std::span<const float> scale,
                         const ChannelLayout& layout, std::int64_t offset, ElementFormat element,
                         std::span<float> out) {
  check_codebook(element);
  if (codes.size() != out.size() || static_cast<std::int64_t>(scale.size()) != layout.slots)
    throw Error(std::string(to_string(element)) + ": codes, scales and output do not match the layout");
  const std::vector<float> book = codebook(element);
  for_each_slot_run(layout, offset, static_cast<std::int64_t>(codes.size()),
                    [&](std::int64_t slot, std::int64_t begin, std::int64_t len) {
                      const float s = scale[static_cast<std::size_t>(slot)];
                      const auto b = static_cast<std::size_t>(begin), n = static_cast<std::size_t>(len);
                      if (is_fp8(element)) {
                        kernels::dequantize_fp8(codes.subspan(b, n), fp8_format(element), s,
                                                out.subspan(b, n));
                        return;
                      }
                      for (std::size_t i = b; i < b + n; ++i) {
                        if (codes[i] >= book.size())
                          throw Error(std::string(to_string(element)) + ": code " + std::to_string(codes[i]) +
                                      " out of range");
                        out[i] = book[codes[i]] * s;
                      }
                    });
}

namespace detail {

FileQuantReport quantize_codebook_file(const std::string& input, const std::string& output,
                                       const FileQuantOptions& options) {
  const ElementFormat element = options.element;
  check_codebook(element);
  if (options.fixed_params || options.given_params)
    throw Error(std::string(to_string(element)) +
                " scales come from each slot's amax: no fixed or given parameters");
  io::check_output_differs(output, {input});
  { io::AtomicFile probe(output); }  // fail on an unwritable folder before the work, not after
  const io::NpyArray array = io::read_npy(input);
  const io::QuantizedFileMeta meta = io::codebook_meta(element, options.spec, array.shape(), array.dtype());
  FileQuantReport report;
  fill_report_header(array, report);
  const ChannelLayout layout = input_layout(array, meta.spec);
  report.slots = layout.slots;
  report.code_bits = meta.code_bits;
  report.range = meta.range;
  with_float_input(array, [&]<class T>(const FloatInput<T>& in) {
    const ObservedRange seen = scan_file(array, in, options, layout, report, 0.5, true);
    QuantParams params{meta.spec, scales_from_range(seen.mins, seen.maxs, element, array.name()),
                       std::vector<std::int32_t>(static_cast<std::size_t>(layout.slots), 0)};
    const int bits = meta.code_bits;
    const Shape q_shape = bits < 8 ? Shape{packed_bytes(report.numel, bits)} : array.shape();
    std::vector<std::byte> npy = io::encode_npy_header(io::DType::kUint8, q_shape);
    const std::size_t data_at = npy.size();
    npy.resize(data_at + static_cast<std::size_t>(packed_bytes(report.numel, bits)));
    auto* data = reinterpret_cast<std::uint8_t*>(npy.data() + data_at);
    const std::int64_t chunk = aligned_chunk(options.chunk_elements);
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(bits < 8 ? std::min(chunk, report.numel) : 0));
    for_each_chunk(array, in, chunk, [&](std::span<const T> x, std::int64_t offset) {
      std::span<std::uint8_t> out = bits < 8 ? std::span<std::uint8_t>(codes.data(), x.size())
                                             : std::span<std::uint8_t>(data + offset, x.size());
      encode_chunk<T>(x, layout, offset, params.scale, element, out);
      if (bits < 8)
        pack_bits<std::uint8_t>(out, bits,
                                {data + offset * bits / 8, static_cast<std::size_t>(packed_bytes(
                                                               static_cast<std::int64_t>(x.size()), bits))});
      report_progress(options, 0.5 + 0.5 * static_cast<double>(offset + static_cast<std::int64_t>(x.size())) /
                                         static_cast<double>(std::max<std::int64_t>(1, report.numel)));
    });
    detail::write_quantized_npz(output, std::move(npy), meta, params);
    return 0;
  });
  report.output_bytes = file_size_or_zero(output);
  return report;
}

std::vector<float> dequantize_codebook_file(const io::QuantizedFile& file) {
  const ChannelLayout layout = channel_layout(file.meta.shape, file.meta.spec);
  std::vector<float> out(static_cast<std::size_t>(layout.numel));
  if (file.meta.code_bits == 8 && file.q.is_native_c_order()) {
    dequantize_codebook(file.q.view<std::uint8_t>().flat(), file.params.scale, layout, 0, file.meta.element,
                        out);
  } else {
    const std::vector<std::int32_t> wide = io::unpack_codes(file);
    const std::vector<std::uint8_t> codes(wide.begin(), wide.end());
    dequantize_codebook(codes, file.params.scale, layout, 0, file.meta.element, out);
  }
  return out;
}

}  // namespace detail

}  // namespace qk
