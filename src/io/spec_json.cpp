// The shared JSON codec of QuantSpec fields.
#include "spec_json.hpp"

namespace qk::io::detail {

void write_spec_fields(nlohmann::json& j, const QuantSpec& s, QRange range) {
  j["signed"] = s.is_signed;
  j["scheme"] = to_string(s.scheme);
  j["granularity"] = to_string(s.granularity);
  j["axis"] = s.granularity == Granularity::kPerChannel ? nlohmann::json(s.axis) : nlohmann::json(nullptr);
  j["group_size"] =
      s.granularity == Granularity::kPerGroup ? nlohmann::json(s.group_size) : nlohmann::json(nullptr);
  j["reduce_range"] = s.reduce_range;
  j["quant_min"] = range.min;
  j["quant_max"] = range.max;
  j["scale_dtype"] = to_string(s.scale_dtype);
  j["range_rule"] = to_string(s.range_rule);
}

void read_spec_fields(const nlohmann::json& j, QuantSpec& s, const std::string& where, const char* what,
                      bool name_unknown_values_in_what) {
  // calib.json has always said "unknown scheme 'x'" (its reader adds the tensor); the meta says "... in meta".
  const std::string in = name_unknown_values_in_what ? std::string(" in ") + what : std::string();
  s.is_signed = j.at("signed").get<bool>();
  const std::string scheme = j.at("scheme").get<std::string>();
  if (scheme != "affine" && scheme != "symmetric")
    throw Error(where + "unknown scheme '" + scheme + "'" + in);
  s.scheme = scheme == "affine" ? Scheme::kAffine : Scheme::kSymmetric;
  const std::string g = j.at("granularity").get<std::string>();
  if (g == "per_tensor") {
    s.granularity = Granularity::kPerTensor;
  } else if (g == "per_channel") {
    s.granularity = Granularity::kPerChannel;
    s.axis = integer_field<int>(j, "axis", where, what);
  } else if (g == "per_group") {
    s.granularity = Granularity::kPerGroup;
    s.group_size = integer_field<std::int64_t>(j, "group_size", where, what);
  } else {
    throw Error(where + "unknown granularity '" + g + "'" + in);
  }
  // Both fields are newer than the formats: absent means float32 scales and PyTorch's rule.
  if (j.contains("scale_dtype")) {
    const std::string d = j.at("scale_dtype").get<std::string>();
    if (d != "float32" && d != "float16") throw Error(where + "unknown scale_dtype '" + d + "'" + in);
    s.scale_dtype = d == "float32" ? ScaleDType::kFloat32 : ScaleDType::kFloat16;
  }
  if (j.contains("range_rule")) {
    const std::string r = j.at("range_rule").get<std::string>();
    if (r != "pytorch" && r != "full") throw Error(where + "unknown range_rule '" + r + "'" + in);
    s.range_rule = r == "pytorch" ? RangeRule::kPyTorch : RangeRule::kFull;
  }
}

}  // namespace qk::io::detail
