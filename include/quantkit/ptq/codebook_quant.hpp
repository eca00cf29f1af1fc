// Codebook quantization (FP8 E4M3/E5M2, NF4; core/element_format.hpp) of a tensor whose elements map to
// parameter slots by a layout (per tensor, per channel or per group; core/spec.hpp): one scale per slot
// from the slot's amax, one code per element. quantize_file (ptq/quantize_file.hpp) streams the same
// rule over a .npy when FileQuantOptions::element names a codebook format.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "quantkit/core/element_format.hpp"
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

// out[i] = codebook[codes[i]] * scale[slot(offset + i)] for a chunk starting at element `offset`; FP8
// runs go through the dispatched SIMD kernel (kernels/fp8_kernels.hpp), bit-identical to the scalar rule.
void dequantize_codebook(std::span<const std::uint8_t> codes, std::span<const float> scale,
                         const ChannelLayout& layout, std::int64_t offset, ElementFormat element,
                         std::span<float> out);

}  // namespace qk
