// Codebook quantization (FP8 E4M3/E5M2, NF4; core/element_format.hpp) of a tensor whose elements map to
// parameter slots by a layout (per tensor, per channel or per group; core/spec.hpp): one scale per slot
// from the slot's amax, one code per element. quantize_file (files/quantize_file.hpp) streams the same
// rule over a .npy when FileQuantOptions::element names a codebook format.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quantkit/core/element_format.hpp"
#include "quantkit/core/float_traits.hpp"
#include "quantkit/core/spec.hpp"

namespace qk {

struct CodebookTensor {
  ElementFormat element = ElementFormat::kFp8E4M3;
  std::vector<std::uint8_t> codes;  // one per element, unpacked
  std::vector<float> scale;         // one per slot
};

// Throws on NaN/Inf (naming the index) and on sizes that do not match the layout.
CodebookTensor quantize_codebook(std::span<const float> x, const ChannelLayout& layout,
                                 ElementFormat element);

// The scale of each slot from its observed min and max (an untouched slot, all NaN or empty, gets 1).
// Throws naming `name` when a slot's amax is beyond the float32 range.
std::vector<float> codebook_scales(std::span<const float> mins, std::span<const float> maxs,
                                   ElementFormat element, const std::string& name);

// The codes of a chunk of x starting at element `offset` (half, float or double), x / scale per slot
// (division, not a reciprocal: 1/s overflows for a subnormal scale). Non-finite values follow the saturate
// rule: ±Inf -> ±the largest value, NaN -> 0.
template <QuantFloat T>
void encode_codebook_chunk(std::span<const T> x, const ChannelLayout& layout, std::int64_t offset,
                           std::span<const float> scale, ElementFormat element,
                           std::span<std::uint8_t> codes);

// out[i] = codebook[codes[i]] * scale[slot(offset + i)] for a chunk starting at element `offset`; FP8
// runs go through the dispatched SIMD kernel (kernels/fp8_kernels.hpp), bit-identical to the scalar rule.
void dequantize_codebook(std::span<const std::uint8_t> codes, std::span<const float> scale,
                         const ChannelLayout& layout, std::int64_t offset, ElementFormat element,
                         std::span<float> out);

}  // namespace qk
