// Mixed-precision candidate formats: parsing, specs and their cost on one layer.
#include "quantkit/mixed/candidate.hpp"

#include <charconv>

#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/core/pack.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/quantize_tensor.hpp"
#include "quantkit/ptq/weight_spec.hpp"

namespace qk {

namespace {

bool parse_int(std::string_view s, std::int64_t& out) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

CandidateFormat parse_candidate(const std::string& text) {
  CandidateFormat f;
  if (text == "fp16" || text == "16") return {Format::kFloat16, 0};
  if (text == "fp32" || text == "32") return {Format::kFloat32, 0};
  const std::string_view s(text);
  const auto g = s.find('g');
  std::int64_t bits = 0;
  if (!parse_int(s.substr(0, g), bits) || bits < 2 || bits > 8 ||
      (g != std::string_view::npos && (!parse_int(s.substr(g + 1), f.group_size) || f.group_size <= 0))) {
    throw Error(
        "bad format '" + text +
        "': expected integer bits 2..8 (per channel), BITSgGROUP such as 4g32 (per group), fp16 or fp32");
  }
  f.format = integer_format(static_cast<int>(bits), true);
  return f;
}

std::vector<CandidateFormat> parse_candidates(const std::string& comma_list) {
  std::vector<CandidateFormat> out;
  std::size_t start = 0;
  while (start <= comma_list.size()) {
    const std::size_t end = std::min(comma_list.find(',', start), comma_list.size());
    const std::string item = comma_list.substr(start, end - start);
    if (!item.empty()) {
      const CandidateFormat f = parse_candidate(item);
      if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
    }
    start = end + 1;
  }
  if (out.empty()) throw Error("no candidate formats in '" + comma_list + "'");
  return out;
}

std::string to_string(const CandidateFormat& f) {
  // Float formats by the table's name; integer formats in the plan's short form ("4", "4g32").
  if (!f.is_integer()) return to_string(f.format);
  return f.group_size > 0 ? std::to_string(f.bits()) + "g" + std::to_string(f.group_size)
                          : std::to_string(f.bits());
}

std::string granularity_name(const CandidateFormat& f, const Shape& shape) {
  if (!f.is_integer()) return "none";
  if (f.group_size > 0) return "per_group";
  return shape.size() >= 2 ? "per_channel" : "per_tensor";
}

QuantSpec candidate_spec(const CandidateFormat& f, const Shape& shape, Shape& view_shape) {
  if (!f.is_integer()) throw Error("format " + to_string(f) + " is not an integer format");
  return integer_weight_spec(f.bits(), f.group_size, shape, view_shape);
}

CandidateResult apply_candidate(std::span<const float> weights, const Shape& shape,
                                const CandidateFormat& f) {
  if (static_cast<std::int64_t>(weights.size()) != shape_numel(shape))
    throw Error("layer of shape " + shape_string(shape) + " has " + std::to_string(weights.size()) +
                " values");
  CandidateResult res;
  const std::size_t n = weights.size();
  res.approx.resize(n);
  if (f.format == Format::kFloat32) {
    std::copy(weights.begin(), weights.end(), res.approx.begin());
    res.bytes = n * 4;
  } else if (f.format == Format::kFloat16) {
    for (std::size_t i = 0; i < n; ++i) res.approx[i] = static_cast<float>(half(weights[i]));
    res.bytes = n * 2;
  } else {
    Shape view_shape;
    const QuantSpec spec = candidate_spec(f, shape, view_shape);
    const TensorView<const float> view(weights.data(), view_shape);
    const QuantParams params = kernels::choose_qparams<float>(view, spec);
    fake_quantize<float>(view, params, res.approx);
    // As `qtool quantize` and apply_plan write the layer: packed codes, a float32 scale per slot, and an
    // int32 zero point per slot only when some zero point is not 0 (never, for these symmetric formats).
    const std::size_t per_slot = sizeof(float) + (stores_zero_points(params) ? sizeof(std::int32_t) : 0);
    res.bytes = static_cast<std::uint64_t>(packed_bytes(static_cast<std::int64_t>(n), spec.bits)) +
                params.scale.size() * per_slot;
  }
  res.error = compare(weights, res.approx);
  return res;
}

}  // namespace qk
