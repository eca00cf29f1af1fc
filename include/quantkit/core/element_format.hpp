// The element format of a quantized tensor: integer codes (the golden rules: (q - zero_point) * scale),
// or a codebook format, whose 2^bits codes each stand for a fixed value, times the slot's scale:
//
//   fp8-e4m3, fp8-e5m2   8-bit codes, the FP8 value of the code (core/fp8.hpp); scale = amax / max_finite
//                        (448 or 57344), so the slot's largest magnitude lands on the largest code
//   nf4                  4-bit codes, the 16 NF4 levels (core/block_formats.hpp); scale = absmax, so
//                        w / scale lies in [-1, 1] (QLoRA's per-block absmax)
//
// A codebook value is codebook[code] * scale: no zero point. An all-zero slot gets scale 1; a subnormal
// amax keeps its scale at least the smallest float (division, never a reciprocal, so nothing overflows).
// Encoding x is the codebook's nearest-value rule on x / scale: FP8 round to nearest even, saturating;
// NF4 the nearest level (ties to the lower).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "quantkit/core/block_formats.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/format.hpp"
#include "quantkit/core/fp8.hpp"

namespace qk {

// The value mapping named by a quantized file's `element` field: integer codes (width and signedness in
// the file's spec), or one of the format table's codebook formats. The field's values are the table's
// names ("int" stands for the whole integer family, as files have always said).
enum class ElementFormat { kInt, kFp8E4M3, kFp8E5M2, kNf4 };

// The table's format of a codebook element (throws for kInt: its format depends on the code width).
inline Format format_of(ElementFormat f) {
  switch (f) {
    case ElementFormat::kFp8E4M3:
      return Format::kFp8E4M3;
    case ElementFormat::kFp8E5M2:
      return Format::kFp8E5M2;
    case ElementFormat::kNf4:
      return Format::kNf4;
    case ElementFormat::kInt:
      break;
  }
  throw Error("integer codes take their format from the code width");
}

inline const char* to_string(ElementFormat f) { return f == ElementFormat::kInt ? "int" : to_string(format_of(f)); }

inline ElementFormat parse_element_format(const std::string& name) {
  for (const ElementFormat f :
       {ElementFormat::kInt, ElementFormat::kFp8E4M3, ElementFormat::kFp8E5M2, ElementFormat::kNf4})
    if (name == to_string(f)) return f;
  throw Error("unknown element format '" + name + "' (int, fp8-e4m3, fp8-e5m2 or nf4)");
}

inline bool is_codebook(ElementFormat f) { return f != ElementFormat::kInt; }
inline bool is_fp8(ElementFormat f) { return f == ElementFormat::kFp8E4M3 || f == ElementFormat::kFp8E5M2; }
inline Fp8Format fp8_format(ElementFormat f) {
  return f == ElementFormat::kFp8E5M2 ? Fp8Format::kE5M2 : Fp8Format::kE4M3;
}

// Bits per code of a codebook format.
inline int codebook_bits(ElementFormat f) { return format_traits(format_of(f)).code_bits; }

// The magnitude a slot's amax maps to.
inline float codebook_max(ElementFormat f) { return is_fp8(f) ? fp8_traits(fp8_format(f)).max_finite : 1.0f; }

inline float codebook_scale(float amax, ElementFormat f) {
  if (!(amax > 0)) return 1.0f;
  return std::fmax(amax / codebook_max(f), std::numeric_limits<float>::denorm_min());
}

// The code of a finite value already divided by its scale.
inline std::uint8_t encode_codebook(float normalized, ElementFormat f) {
  if (is_fp8(f)) return float_to_fp8(normalized, fp8_format(f));
  return nf4_code(std::fmax(-1.0f, std::fmin(1.0f, normalized)));
}

// Every code's value: 256 for FP8 (NaN where the format has NaN, ±Inf for E5M2), 16 for NF4.
inline std::vector<float> codebook(ElementFormat f) {
  if (!is_codebook(f)) throw Error("integer codes have no codebook");
  std::vector<float> values(std::size_t{1} << codebook_bits(f));
  for (std::size_t c = 0; c < values.size(); ++c)
    values[c] = is_fp8(f) ? fp8_to_float(static_cast<std::uint8_t>(c), fp8_format(f)) : kNf4Levels[c];
  return values;
}

}  // namespace qk
