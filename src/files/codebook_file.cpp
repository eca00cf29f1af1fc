// Codebook formats (FP8, NF4) streamed over files: pass 1 finds each slot's amax (the shared non-finite
// scan), pass 2 encodes x / scale chunk by chunk into the q member (packed for NF4).
#include <cmath>

#include "file_streaming.hpp"
#include "quantkit/core/qparams.hpp"
#include "quantkit/core/pack.hpp"
#include "quantkit/files/quantize_file.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/ptq/codebook_quant.hpp"

namespace qk {

namespace detail {

FileQuantReport quantize_codebook_array(const io::NpyArray& array, const QuantizedSink& sink,
                                        const FileQuantOptions& options) {
  const ElementFormat element = options.element;
  if (!is_codebook(element)) throw Error("integer codes are not a codebook format");
  if (options.fixed_params || options.given_params)
    throw Error(std::string(to_string(element)) +
                " scales come from each slot's amax: no fixed or given parameters");
  const io::QuantizedFileMeta meta = io::codebook_meta(element, options.spec, array.shape(), array.dtype());
  FileQuantReport report;
  fill_report_header(array, report);
  const ChannelLayout layout = input_layout(array, meta.spec);
  report.slots = layout.slots;
  report.code_bits = meta.code_bits;
  report.range = meta.range;
  with_float_input(array, [&]<class T>(const FloatInput<T>& in) {
    const ObservedRange seen = scan_file(array, in, options, layout, report, 0.5, true);
    QuantParams params{meta.spec, codebook_scales(seen.mins, seen.maxs, element, array.name()),
                       std::vector<std::int32_t>(static_cast<std::size_t>(layout.slots), 0)};
    // Float16 scales are rounded before encoding, so the codes are those of the stored scale.
    for (float& s : params.scale) s = stored_scale(s, meta.spec);
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
      encode_codebook_chunk<T>(x, layout, offset, params.scale, element, out);
      if (bits < 8)
        pack_bits<std::uint8_t>(out, bits,
                                {data + offset * bits / 8, static_cast<std::size_t>(packed_bytes(
                                                               static_cast<std::int64_t>(x.size()), bits))});
      report_progress(options, 0.5 + 0.5 * static_cast<double>(offset + static_cast<std::int64_t>(x.size())) /
                                         static_cast<double>(std::max<std::int64_t>(1, report.numel)));
    });
    detail::write_quantized_npz(sink, std::move(npy), meta, params);
    report.bits_per_weight =
        io::payload_bits_per_weight(bits, meta.spec.scale_dtype, false, report.slots, report.numel);
    return 0;
  });
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
