// Quantized-tensor files: metadata JSON, parameter members, validation on read.
#include "quantkit/io/qfile.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "quantkit/core/pack.hpp"
#include "spec_json.hpp"

namespace qk::io {

namespace {

using nlohmann::json;

// The meta's integer fields: errors name the file and the meta field.
template <class Int>
Int integer_field(const json& j, const char* key, const std::string& name) {
  return detail::integer_field<Int>(j, key, name + ": ", "meta");
}

}  // namespace

std::string encode_meta(const QuantizedFileMeta& meta) {
  const QuantSpec& s = meta.spec;
  json j;
  j["format"] = meta.needs_v3() ? kQuantizedFormatV3 : is_codebook(meta.element) ? kQuantizedFormatV2 : kQuantizedFormat;
  j["element"] = to_string(meta.element);
  j["bits"] = meta.code_bits;
  detail::write_spec_fields(j, s, meta.range);
  j["packing"] = meta.code_bits == 8 ? "none" : "lsb_bitstream";
  j["shape"] = meta.shape;
  j["dtype"] = dtype_name(meta.dtype);
  if (meta.needs_v3()) j["zero_point_member"] = meta.zero_point_member;
  if (meta.method) {
    const MethodRecord& m = *meta.method;
    j["method"] = {{"name", m.name},
                   {"calibration_rows", m.calibration_rows},
                   {"alpha", m.alpha},
                   {"output_error", m.output_error},
                   {"rtn_output_error", m.rtn_output_error}};
  }
  return j.dump();
}

QuantizedFileMeta decode_meta(const std::string& text, const std::string& name) {
  QuantizedFileMeta meta;
  try {
    const json j = json::parse(text);
    const std::string format = j.at("format").get<std::string>();
    if (format != kQuantizedFormat && format != kQuantizedFormatV2 && format != kQuantizedFormatV3) {
      throw Error(name + ": meta format is '" + format + "', expected " + kQuantizedFormat + ", " +
                  kQuantizedFormatV2 + " or " + kQuantizedFormatV3);
    }
    meta.code_bits = integer_field<int>(j, "bits", name);
    meta.range = {integer_field<std::int32_t>(j, "quant_min", name),
                  integer_field<std::int32_t>(j, "quant_max", name)};
    QuantSpec& s = meta.spec;
    detail::read_spec_fields(j, s, name + ": ", "meta");
    s.reduce_range = false;  // the stored range is already the effective one
    s.quant_min = meta.range.min;
    s.quant_max = meta.range.max;
    s.bits = meta.code_bits;
    if (!j.at("shape").is_array()) throw Error(name + ": meta field 'shape' must be a list");
    for (const auto& d : j.at("shape")) {
      if (!d.is_number_integer() || d.get<std::int64_t>() < 0) {
        throw Error(name + ": meta shape must hold non-negative integers");
      }
    }
    meta.shape = j.at("shape").get<Shape>();
    meta.dtype = dtype_from_name(j.at("dtype").get<std::string>());
    const std::string packing = j.at("packing").get<std::string>();
    if (meta.code_bits < 1 || meta.code_bits > 8) throw Error(name + ": bits in meta must be 1..8");
    if ((meta.code_bits == 8) != (packing == "none"))
      throw Error(name + ": packing '" + packing + "' does not match bits");
    s.validate();
    shape_numel(meta.shape);
    if (s.granularity == Granularity::kPerChannel)
      normalize_axis(s.axis, static_cast<int>(meta.shape.size()));
    if (s.storage_bits() > meta.code_bits) throw Error(name + ": range in meta does not fit its bits");
    if (j.contains("method")) {
      const json& m = j.at("method");
      MethodRecord r;
      r.name = m.at("name").get<std::string>();
      r.calibration_rows = integer_field<std::int64_t>(m, "calibration_rows", name);
      for (const char* key : {"alpha", "output_error", "rtn_output_error"})
        if (!m.at(key).is_number()) throw Error(name + ": meta method field '" + key + "' must be a number");
      r.alpha = m.at("alpha").get<double>();
      r.output_error = m.at("output_error").get<double>();
      r.rtn_output_error = m.at("rtn_output_error").get<double>();
      meta.method = r;
    }
    if (j.contains("element")) meta.element = parse_element_format(j.at("element").get<std::string>());
    if (is_codebook(meta.element) && format == kQuantizedFormat)
      throw Error(name + ": a " + to_string(meta.element) + " file must say format " + kQuantizedFormatV2 +
                  " or later");
    meta.zero_point_member = format != kQuantizedFormatV3 || j.value("zero_point_member", true);
    if (is_codebook(meta.element)) {
      const int bits = codebook_bits(meta.element);
      if (meta.code_bits != bits || s.is_signed || meta.range.min != 0 || meta.range.max != (1 << bits) - 1)
        throw Error(name + ": a " + to_string(meta.element) + " file has unsigned " + std::to_string(bits) +
                    "-bit codes 0.." + std::to_string((1 << bits) - 1));
    }
  } catch (const json::exception& e) {
    throw Error(name + ": malformed meta JSON: " + e.what());
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.rfind(name, 0) == 0) throw;
    throw Error(name + ": invalid meta: " + what);
  }
  return meta;
}

double payload_bits_per_weight(int code_bits, ScaleDType scale_dtype, bool zero_point_member, std::int64_t slots,
                               std::int64_t numel) {
  if (numel <= 0) return 0.0;
  const double per_slot = (scale_dtype == ScaleDType::kFloat16 ? 16.0 : 32.0) + (zero_point_member ? 32.0 : 0.0);
  return code_bits + per_slot * static_cast<double>(slots) / static_cast<double>(numel);
}

Shape param_shape(const Shape& shape, const QuantSpec& spec) {
  switch (spec.granularity) {
    case Granularity::kPerTensor:
      return {};
    case Granularity::kPerChannel: {
      const int a = normalize_axis(spec.axis, static_cast<int>(shape.size()));
      Shape out(shape.size(), 1);
      out[static_cast<std::size_t>(a)] = shape[static_cast<std::size_t>(a)];
      return out;
    }
    case Granularity::kPerGroup: {
      const std::int64_t row = group_row_length(shape, spec.group_size);
      if (row == shape.back()) {
        Shape out = shape;
        out.back() /= spec.group_size;
        return out;
      }
      return {shape[0], row / spec.group_size};  // groups along a conv weight's flattened rows
    }
  }
  return {};
}

QuantizedFileMeta codebook_meta(ElementFormat element, const QuantSpec& layout_spec, const Shape& shape,
                                DType dtype) {
  if (!is_codebook(element)) throw Error("codebook_meta: integer codes have no codebook");
  const int bits = codebook_bits(element);
  QuantSpec spec;
  spec.bits = bits;
  spec.is_signed = false;
  spec.scheme = Scheme::kSymmetric;
  spec.granularity = layout_spec.granularity;
  spec.axis = layout_spec.axis;
  spec.group_size = layout_spec.group_size;
  spec.quant_min = 0;
  spec.quant_max = (1 << bits) - 1;
  spec.scale_dtype = layout_spec.scale_dtype;
  spec.validate();
  QuantizedFileMeta meta;
  meta.spec = spec;
  meta.range = spec.range();
  meta.code_bits = bits;
  meta.shape = shape;
  meta.dtype = dtype;
  meta.element = element;
  return meta;
}

void add_quantized_params(ArraySink& writer, const QuantizedFileMeta& given, const QuantParams& params,
                          const std::string& prefix) {
  QuantizedFileMeta meta = given;
  meta.zero_point_member = stores_zero_points(params);
  const Shape pshape = param_shape(meta.shape, meta.spec);
  if (meta.spec.scale_dtype == ScaleDType::kFloat16) {
    std::vector<half> h;
    h.reserve(params.scale.size());
    for (const float v : params.scale) {
      if (stored_scale(v, meta.spec) != v) throw Error("scale " + std::to_string(v) + " is not a float16 value");
      h.emplace_back(v);
    }
    writer.add<half>(prefix + "scale", pshape, std::span<const half>(h));
  } else {
    writer.add<float>(prefix + "scale", pshape, std::span<const float>(params.scale));
  }
  if (meta.zero_point_member)
    writer.add<std::int32_t>(prefix + "zero_point", pshape, std::span<const std::int32_t>(params.zero_point));

  if (is_codebook(meta.element)) {
    const std::vector<float> book = codebook(meta.element);
    writer.add<float>(prefix + "codebook", {static_cast<std::int64_t>(book.size())}, std::span<const float>(book));
  }
  writer.add_encoded(prefix + "meta", encode_npy_string(encode_meta(meta)));
}

// The checks of read_quantized over members read by `member` (each name at most once); `path` names the
// file in every message.
QuantizedFile read_quantized_members(const std::vector<std::string>& names,
                                     const std::function<NpyArray(const std::string&)>& member,
                                     const std::string& path) {
  for (const char* required : {"q", "scale", "meta"}) {
    if (std::find(names.begin(), names.end(), required) == names.end()) {
      throw Error(path + ": not a quantized tensor file (member '" + required + "' is missing)");
    }
  }
  QuantizedFile file;
  file.meta = decode_meta(member("meta").as_string(), path);
  const bool has_zero_point = std::find(names.begin(), names.end(), "zero_point") != names.end();
  if (file.meta.zero_point_member && !has_zero_point)
    throw Error(path + ": not a quantized tensor file (member 'zero_point' is missing)");
  if (!file.meta.zero_point_member && has_zero_point)
    throw Error(path + ": meta says zero_point_member false, but the file has a zero_point member");
  const NpyArray scale = member("scale");
  const std::optional<NpyArray> zero_point =
      has_zero_point ? std::optional<NpyArray>(member("zero_point")) : std::nullopt;
  file.q = member("q");
  Shape pshape;
  try {
    pshape = param_shape(file.meta.shape, file.meta.spec);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  const DType scale_dtype = file.meta.spec.scale_dtype == ScaleDType::kFloat16 ? DType::kFloat16 : DType::kFloat32;
  if (scale.dtype() != scale_dtype || (zero_point && zero_point->dtype() != DType::kInt32)) {
    throw Error(path + ": scale must be " + dtype_name(scale_dtype) + " (meta scale_dtype) and zero_point int32");
  }
  if (scale.shape() != pshape || (zero_point && zero_point->shape() != pshape)) {
    throw Error(path + ": scale/zero_point shape " + shape_string(scale.shape()) + " does not match " +
                shape_string(pshape));
  }
  file.params.spec = file.meta.spec;
  file.params.scale = scale.to_vector<float>();
  // Without the member every zero point is 0 (signed symmetric codes and codebooks need none).
  file.params.zero_point = zero_point ? zero_point->to_vector<std::int32_t>()
                                      : std::vector<std::int32_t>(file.params.scale.size(), 0);
  const std::int64_t numel = shape_numel(file.meta.shape);
  if (file.meta.code_bits == 8) {
    const DType want = file.meta.spec.is_signed ? DType::kInt8 : DType::kUint8;
    if (file.q.dtype() != want || file.q.shape() != file.meta.shape) {
      throw Error(path + ": q must be " + dtype_name(want) + " with shape " + shape_string(file.meta.shape));
    }
  } else if (file.q.dtype() != DType::kUint8 ||
             file.q.shape() != Shape{packed_bytes(numel, file.meta.code_bits)}) {
    throw Error(path + ": packed q must be uint8 with " +
                std::to_string(packed_bytes(numel, file.meta.code_bits)) + " bytes");
  }
  try {
    if (is_codebook(file.meta.element)) {
      // Decoding only multiplies by the scale, and the writer floors it at the smallest float (whose
      // inverse overflows): finite and positive is all a codebook scale must be.
      for (std::size_t i = 0; i < file.params.scale.size(); ++i)
        if (!(std::isfinite(file.params.scale[i]) && file.params.scale[i] > 0))
          throw Error("scale[" + std::to_string(i) + "] " + std::to_string(file.params.scale[i]) +
                      " is not finite and positive");
    } else {
      check_params(file.params, channel_layout(file.meta.shape, file.meta.spec));
    }
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  if (is_codebook(file.meta.element)) {
    for (const std::int32_t z : file.params.zero_point)
      if (z != 0)
        throw Error(path + ": a " + std::string(to_string(file.meta.element)) +
                    " file has no zero point (all 0)");
    if (std::find(names.begin(), names.end(), "codebook") == names.end())
      throw Error(path + ": member 'codebook' is missing");
    const NpyArray book = member("codebook");
    const std::vector<float> want = codebook(file.meta.element);
    if (book.dtype() != DType::kFloat32 || book.shape() != Shape{static_cast<std::int64_t>(want.size())})
      throw Error(path + ": codebook must be float32 [" + std::to_string(want.size()) + "]");
    const std::vector<float> got = book.to_vector<float>();
    for (std::size_t c = 0; c < want.size(); ++c) {
      const bool same = std::isnan(want[c]) ? std::isnan(got[c]) : got[c] == want[c];
      if (!same)
        throw Error(path + ": codebook value " + std::to_string(c) + " is not " +
                    to_string(file.meta.element) + "'s");
    }
  }
  if (std::find(names.begin(), names.end(), "input_scale") != names.end()) {
    const NpyArray s = member("input_scale");
    // One value per input column of the [shape[0], rest] view: the last axis of a matrix, a conv weight's
    // flattened in * k... columns.
    std::int64_t columns = 1;
    for (std::size_t i = 1; i < file.meta.shape.size(); ++i) columns *= file.meta.shape[i];
    if (s.dtype() != DType::kFloat32 || file.meta.shape.size() < 2 || s.shape() != Shape{columns})
      throw Error(path + ": input_scale must be float32 with one value per input column (prod(shape[1:]))");
    file.input_scale = s.to_vector<float>();
    for (const float v : file.input_scale)
      if (!(std::isfinite(v) && v > 0))
        throw Error(path + ": input_scale holds a value that is not finite and positive");
  }
  return file;
}

QuantizedFile read_quantized(const std::string& path) {
  return read_quantized_members(
      npz_names(path), [&](const std::string& name) { return read_npz_member(path, name); }, path);
}

QuantizedFile read_quantized_member(const std::string& path, const std::string& key) {
  const std::string prefix = key + "/";
  std::vector<std::string> names;
  for (const std::string& n : npz_names(path))
    if (n.size() > prefix.size() && n.compare(0, prefix.size(), prefix) == 0) names.push_back(n.substr(prefix.size()));
  return read_quantized_members(
      names, [&](const std::string& name) { return read_npz_member(path, prefix + name); }, path + ":" + key);
}

QuantizedFile read_quantized_bytes(std::span<const std::byte> bytes, const std::string& name) {
  std::map<std::string, NpyArray> arrays = read_npz_bytes(bytes, name);
  std::vector<std::string> names;
  for (const auto& entry : arrays) names.push_back(entry.first);
  return read_quantized_members(
      names, [&](const std::string& member) { return std::move(arrays.at(member)); }, name);
}

std::vector<std::int32_t> unpack_codes(const QuantizedFile& file) {
  const std::int64_t numel = shape_numel(file.meta.shape);
  std::vector<std::int32_t> codes(static_cast<std::size_t>(numel));
  if (file.meta.code_bits == 8) {
    codes = file.meta.spec.is_signed ? [&] {
      const auto v = file.q.to_vector<std::int8_t>();
      return std::vector<std::int32_t>(v.begin(), v.end());
    }() : [&] {
      const auto v = file.q.to_vector<std::uint8_t>();
      return std::vector<std::int32_t>(v.begin(), v.end());
    }();
  } else {
    const auto raw = file.q.raw();
    unpack_bits<std::int32_t>({reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()},
                              file.meta.code_bits, file.meta.spec.is_signed, codes);
  }
  return codes;
}

Nf4View nf4_view(const QuantizedFile& file, const std::string& name) {
  const QuantizedFileMeta& m = file.meta;
  if (m.element != ElementFormat::kNf4)
    throw Error(name + ": element is " + to_string(m.element) + ", not nf4");
  if (m.spec.granularity != Granularity::kPerGroup || m.shape.empty())
    throw Error(name + ": the nf4 kernels take groups along the rows; this file has " +
                (m.shape.empty() ? std::string("a 0-d tensor") : std::string(to_string(m.spec.granularity)) + " scales"));
  Nf4View w;
  w.cols = group_row_length(m.shape, m.spec.group_size);  // a conv weight's groups may run along [out, rest]
  w.rows = w.cols > 0 ? shape_numel(m.shape) / w.cols : 0;
  w.group_size = m.spec.group_size;
  const auto raw = file.q.raw();
  w.codes = {reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()};
  w.scales = file.params.scale;
  check_nf4(w, name);
  return w;
}

}  // namespace qk::io
