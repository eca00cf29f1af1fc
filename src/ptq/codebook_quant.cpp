// Codebook quantization (FP8, NF4) in memory: one scale per slot from its amax, one code per element; the
// chunk rule is shared with the file streamer (files/quantize_file.hpp).
#include "quantkit/ptq/codebook_quant.hpp"

#include <cmath>
#include <string>

#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/fp8_kernels.hpp"
#include "quantkit/kernels/quantize_tensor.hpp"

namespace qk {

namespace {

void check_codebook(ElementFormat element) {
  if (!is_codebook(element)) throw Error("integer codes are not a codebook format");
}

}  // namespace

std::vector<float> codebook_scales(std::span<const float> mins, std::span<const float> maxs,
                                   ElementFormat element, const std::string& name) {
  if (mins.size() != maxs.size()) throw Error(name + ": min and max differ in slots");
  std::vector<float> scale(mins.size());
  for (std::size_t i = 0; i < scale.size(); ++i) {
    const float amax = mins[i] <= maxs[i] ? std::fmax(std::fabs(mins[i]), std::fabs(maxs[i])) : 0.0f;
    if (!std::isfinite(amax)) throw Error(name + ": a value lies beyond the float32 range");
    scale[i] = codebook_scale(amax, element);
  }
  return scale;
}

template <QuantFloat T>
void encode_codebook_chunk(std::span<const T> x, const ChannelLayout& layout, std::int64_t offset,
                           std::span<const float> scale, ElementFormat element,
                           std::span<std::uint8_t> codes) {
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

template void encode_codebook_chunk<half>(std::span<const half>, const ChannelLayout&, std::int64_t,
                                          std::span<const float>, ElementFormat, std::span<std::uint8_t>);
template void encode_codebook_chunk<float>(std::span<const float>, const ChannelLayout&, std::int64_t,
                                           std::span<const float>, ElementFormat, std::span<std::uint8_t>);
template void encode_codebook_chunk<double>(std::span<const double>, const ChannelLayout&, std::int64_t,
                                            std::span<const float>, ElementFormat, std::span<std::uint8_t>);

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
  t.scale = codebook_scales(mins, maxs, element, to_string(element));
  t.codes.resize(x.size());
  encode_codebook_chunk<float>(x, layout, 0, t.scale, element, t.codes);
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

}  // namespace qk
