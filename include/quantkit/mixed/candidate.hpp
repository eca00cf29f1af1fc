// The weight formats a mixed-precision plan chooses among, and what one costs on one layer: stored
// bytes and the error of the quantized weights against float32.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quantkit/core/format.hpp"
#include "quantkit/core/spec.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qk {

// An integer format is `bits` (2..8) signed symmetric, per output channel (axis 0) or per group of
// `group_size` consecutive weights along the layer viewed as [out, rest]; the float formats keep the
// weights as float16 or float32. Text form: "4" (per channel), "4g32" (per group of 32), "fp16" or "16",
// "fp32" or "32".
struct CandidateFormat {
  Format format = Format::kInt8;  // a row of the format table: fp32, fp16, or a signed integer int2..int8
  std::int64_t group_size = 0;    // integer formats: 0 per channel, else per group
  // The code bits per weight (2..8, 16 or 32): the format table's.
  int bits() const { return format_traits(format).code_bits; }
  // The bits per weight a bit budget counts (selection.hpp, kAverageBits): the code bits, plus for a
  // per-group format its float32 scale spread over the group (4g32: 5, 4g128: 4.25, 3g64: 3.5), as ggml
  // names Q4_0 4.5 bits. A per-channel scale is not counted (it spreads over a whole row; as HAWQ/HAQ).
  double nominal_bits() const { return bits() + (is_integer() && group_size > 0 ? 32.0 / group_size : 0.0); }
  // nominal_bits() times `weights`, exactly (a group divides the weights whenever the format applies).
  std::uint64_t nominal_bits(std::uint64_t weights) const {
    const auto code = static_cast<std::uint64_t>(bits()) * weights;
    return is_integer() && group_size > 0 ? code + 32 * (weights / static_cast<std::uint64_t>(group_size))
                                          : code;
  }
  bool is_integer() const { return format_traits(format).kind == FormatKind::kInteger; }
  bool operator==(const CandidateFormat&) const = default;
};

CandidateFormat parse_candidate(const std::string& text);
std::vector<CandidateFormat> parse_candidates(const std::string& comma_list);
std::string to_string(const CandidateFormat& f);
// "per_channel", "per_group", "per_tensor" (integer formats of rank-0/1 layers) or "none" (float).
std::string granularity_name(const CandidateFormat& f, const Shape& shape);

// The quantization spec of an integer format on a layer of `shape`, and the shape it is applied to
// (per group: [out, rest] when the group divides rest, else the flattened layer). Throws for float
// formats and for a group size that divides neither.
QuantSpec candidate_spec(const CandidateFormat& f, const Shape& shape, Shape& view_shape);

// One format applied to one layer.
struct CandidateResult {
  std::vector<float> approx;  // the weights as the format stores them, back in float32
  // As the quantized file stores it: codes (packed below 8 bits), a float32 scale per slot (channel or
  // group), and an int32 zero point per slot only when some zero point is not 0 (never for these
  // symmetric formats); the file's zip and metadata are not counted. Float formats: 2 or 4 bytes a weight.
  std::uint64_t bytes = 0;
  ErrorStats error;
};

CandidateResult apply_candidate(std::span<const float> weights, const Shape& shape, const CandidateFormat& f);

}  // namespace qk
