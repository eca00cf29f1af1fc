// Whole .npz checkpoints through the file quantizers (files/checkpoint_file.hpp).
#include "quantkit/files/checkpoint_file.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "checkpoint_member.hpp"
#include "file_streaming.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"

namespace qk {

namespace {

bool is_float(io::DType d) {
  return d == io::DType::kFloat16 || d == io::DType::kFloat32 || d == io::DType::kFloat64;
}

bool matches(const std::string& pattern, const std::string& name) {
  return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

// The member as a little-endian C-order .npy, whatever byte order and memory order it was stored in.
std::vector<std::byte> encode_copy(const io::NpyArray& a) {
  if (a.dtype() == io::DType::kUnicode) {
    if (a.shape().empty()) return io::encode_npy_string(a.as_string());
    throw Error(a.name() + ": cannot copy a unicode array of rank " + std::to_string(a.shape().size()));
  }
  if (a.is_native_c_order()) return io::encode_npy(a.dtype(), a.shape(), a.raw());
  auto as = [&]<class T>(T*) {
    const std::vector<T> v = a.to_vector<T>();
    return io::encode_npy(a.dtype(), a.shape(), std::as_bytes(std::span<const T>(v)));
  };
  switch (a.dtype()) {
    case io::DType::kFloat16: return as(static_cast<half*>(nullptr));
    case io::DType::kFloat32: return as(static_cast<float*>(nullptr));
    case io::DType::kFloat64: return as(static_cast<double*>(nullptr));
    case io::DType::kInt8: return as(static_cast<std::int8_t*>(nullptr));
    case io::DType::kUint8: return as(static_cast<std::uint8_t*>(nullptr));
    case io::DType::kInt16: return as(static_cast<std::int16_t*>(nullptr));
    case io::DType::kUint16: return as(static_cast<std::uint16_t*>(nullptr));
    case io::DType::kInt32: return as(static_cast<std::int32_t*>(nullptr));
    case io::DType::kUint32: return as(static_cast<std::uint32_t*>(nullptr));
    case io::DType::kInt64: return as(static_cast<std::int64_t*>(nullptr));
    case io::DType::kUint64: return as(static_cast<std::uint64_t*>(nullptr));
    case io::DType::kBool: {
      const std::vector<bool> v = a.to_vector<bool>();
      std::vector<std::uint8_t> bytes(v.begin(), v.end());
      return io::encode_npy(io::DType::kBool, a.shape(), std::as_bytes(std::span<const std::uint8_t>(bytes)));
    }
    default:
      throw Error(a.name() + ": cannot copy dtype " + io::dtype_name(a.dtype()));
  }
}

std::uint64_t size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

}  // namespace

std::string checkpoint_copy_reason(const std::string& name, const Shape& shape, io::DType dtype,
                                   const std::vector<std::string>& include, const std::vector<std::string>& exclude) {
  return checkpoint_copy_reason(name, shape, is_float(dtype), io::dtype_name(dtype), include, exclude);
}

std::string checkpoint_copy_reason(const std::string& name, const Shape& shape, bool floating,
                                   const std::string& dtype_label, const std::vector<std::string>& include,
                                   const std::vector<std::string>& exclude) {
  if (!floating) return dtype_label;
  if (shape.size() < 2) return "rank " + std::to_string(shape.size());
  if (!include.empty() &&
      std::none_of(include.begin(), include.end(), [&](const std::string& p) { return matches(p, name); }))
    return "not included";
  for (const std::string& p : exclude)
    if (matches(p, name)) return "excluded by '" + p + "'";
  return "";
}

CheckpointReport quantize_checkpoint(const std::string& input, const std::string& output,
                                     const CheckpointQuantOptions& options) {
  io::check_output_differs(output, {input});
  { io::AtomicFile probe(output); }  // an unwritable folder fails before the work
  const std::vector<std::string> names = io::npz_names(input);
  if (std::find(names.begin(), names.end(), kCheckpointIndexMember) != names.end())
    throw Error(input + ": already a quantized checkpoint (member " + kCheckpointIndexMember + ")");
  if (names.empty()) throw Error(input + ": archive holds no arrays");
  CheckpointReport report;
  report.input_bytes = size_or_zero(input);
  io::NpzWriter writer;
  nlohmann::json index = {{"format", kCheckpointFormat}, {"quantized", nlohmann::json::array()},
                          {"copied", nlohmann::json::array()}};
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& key = names[i];
    const io::NpyArray a = io::read_npz_member(input, key);
    CheckpointEntry e{
        key,       a.shape(),
        a.dtype(), io::dtype_name(a.dtype()),
        false,     checkpoint_copy_reason(key, a.shape(), a.dtype(), options.include, options.exclude),
        {},        {}};
    if (e.reason.empty()) {
      e.report = detail::quantize_member(a, input + ":" + key, options,
                                         detail::QuantizedSink{"", &writer, key + "/"}, e.note);
      e.quantized = true;
      index["quantized"].push_back(key);
    } else {
      writer.add_encoded(key, encode_copy(a));
      index["copied"].push_back(key);
    }
    report.members.push_back(std::move(e));
    if (options.progress) options.progress(static_cast<double>(i + 1) / static_cast<double>(names.size()));
  }
  writer.add_encoded(kCheckpointIndexMember, io::encode_npy_string(index.dump()));
  writer.write(output);
  report.output_bytes = size_or_zero(output);
  return report;
}

bool is_quantized_checkpoint(const std::string& path) {
  try {
    const std::vector<std::string> names = io::npz_names(path);
    return std::find(names.begin(), names.end(), kCheckpointIndexMember) != names.end();
  } catch (const Error&) {
    return false;
  }
}

CheckpointIndex read_checkpoint_index(const std::string& path) {
  CheckpointIndex index;
  try {
    const nlohmann::json j = nlohmann::json::parse(io::read_npz_member(path, kCheckpointIndexMember).as_string());
    if (j.at("format").get<std::string>() != kCheckpointFormat)
      throw Error(path + ": checkpoint format is '" + j.at("format").get<std::string>() + "', expected " +
                  kCheckpointFormat);
    index.quantized = j.at("quantized").get<std::vector<std::string>>();
    index.copied = j.at("copied").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed " + kCheckpointIndexMember + ": " + e.what());
  }
  // Each member once, in one list: a name listed twice would be read (or written back) twice.
  std::set<std::string> seen;
  for (const auto* list : {&index.quantized, &index.copied})
    for (const std::string& name : *list)
      if (name.empty() || !seen.insert(name).second)
        throw Error(path + ": malformed " + kCheckpointIndexMember + ": member '" + name + "' is listed " +
                    (name.empty() ? "without a name" : "twice"));
  return index;
}

io::QuantizedFile read_checkpoint_tensor(const std::string& path, const std::string& key) {
  return io::read_quantized_member(path, key);
}

std::vector<CheckpointTensorSummary> summarize_checkpoint(const std::string& path, const std::string& reference) {
  std::vector<CheckpointTensorSummary> out;
  for (const std::string& key : read_checkpoint_index(path).quantized) {
    const io::QuantizedFile f = read_checkpoint_tensor(path, key);
    CheckpointTensorSummary s = detail::tensor_summary(key, f);
    if (!reference.empty()) {
      const io::NpyArray ref = io::read_npz_member(reference, key);
      if (ref.shape() != f.meta.shape)
        throw Error(reference + ":" + key + ": shape " + shape_string(ref.shape()) + " differs from the checkpoint's " +
                    shape_string(f.meta.shape));
      s.error = compare(ref.to_vector<float>(), dequantize_to_float(f));
      s.has_reference = true;
    }
    out.push_back(std::move(s));
  }
  return out;
}

CheckpointReport dequantize_checkpoint(const std::string& input, const std::string& output, io::DType out_dtype) {
  io::check_output_differs(output, {input});
  if (!is_float(out_dtype))
    throw Error(std::string("dequantize writes float16, float32 or float64, not ") + io::dtype_name(out_dtype));
  { io::AtomicFile probe(output); }
  const CheckpointIndex index = read_checkpoint_index(input);
  CheckpointReport report;
  report.input_bytes = size_or_zero(input);
  io::NpzWriter writer;
  auto dequantize_member = [&](const std::string& key) {
    const io::QuantizedFile f = read_checkpoint_tensor(input, key);
    const std::vector<float> v = dequantize_to_float(f);
    auto put = [&]<class T>(T*) {
      std::vector<T> out(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<T>(v[i]);
      writer.add_encoded(key, io::encode_npy(out_dtype, f.meta.shape, std::as_bytes(std::span<const T>(out))));
    };
    if (out_dtype == io::DType::kFloat16)
      put(static_cast<half*>(nullptr));
    else if (out_dtype == io::DType::kFloat64)
      put(static_cast<double*>(nullptr));
    else
      put(static_cast<float*>(nullptr));
    report.members.push_back({key, f.meta.shape, out_dtype, io::dtype_name(out_dtype), true, "", {}, {}});
  };
  // In the archive's order, which is the original checkpoint's: a quantized member where its KEY/q is.
  const std::set<std::string> quantized(index.quantized.begin(), index.quantized.end());
  const std::set<std::string> copied(index.copied.begin(), index.copied.end());
  for (const std::string& name : io::npz_names(input)) {
    if (copied.count(name)) {
      const io::NpyArray a = io::read_npz_member(input, name);
      writer.add_encoded(name, encode_copy(a));
      report.members.push_back(
          {name, a.shape(), a.dtype(), io::dtype_name(a.dtype()), false, "copied", {}, {}});
    } else if (name.size() > 2 && name.ends_with("/q") && quantized.count(name.substr(0, name.size() - 2))) {
      dequantize_member(name.substr(0, name.size() - 2));
    }
  }
  if (report.members.size() != quantized.size() + copied.size())
    throw Error(input + ": the members listed in " + kCheckpointIndexMember + " are not all in the archive");
  writer.write(output);
  report.output_bytes = size_or_zero(output);
  return report;
}

}  // namespace qk
