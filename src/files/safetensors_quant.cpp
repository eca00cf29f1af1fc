// safetensors models through the checkpoint quantizer (files/safetensors_quant.hpp).
#include "quantkit/files/safetensors_quant.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "checkpoint_member.hpp"
#include "file_streaming.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/io/safetensors_checkpoint.hpp"

namespace qk {

namespace {

// The dtypes both containers have, each way. BF16 and FP8 have no numpy dtype (numpy lacks them).
io::StDType st_dtype_of(io::DType d, const std::string& where) {
  switch (d) {
    case io::DType::kBool:
      return io::StDType::kBool;
    case io::DType::kUint8:
      return io::StDType::kU8;
    case io::DType::kInt8:
      return io::StDType::kI8;
    case io::DType::kInt16:
      return io::StDType::kI16;
    case io::DType::kUint16:
      return io::StDType::kU16;
    case io::DType::kFloat16:
      return io::StDType::kF16;
    case io::DType::kInt32:
      return io::StDType::kI32;
    case io::DType::kUint32:
      return io::StDType::kU32;
    case io::DType::kFloat32:
      return io::StDType::kF32;
    case io::DType::kInt64:
      return io::StDType::kI64;
    case io::DType::kUint64:
      return io::StDType::kU64;
    case io::DType::kFloat64:
      return io::StDType::kF64;
    default:
      throw Error(where + ": dtype " + io::dtype_name(d) + " has no safetensors dtype");
  }
}

bool io_dtype_of(io::StDType d, io::DType& out) {
  switch (d) {
    case io::StDType::kBool:
      out = io::DType::kBool;
      return true;
    case io::StDType::kU8:
      out = io::DType::kUint8;
      return true;
    case io::StDType::kI8:
      out = io::DType::kInt8;
      return true;
    case io::StDType::kI16:
      out = io::DType::kInt16;
      return true;
    case io::StDType::kU16:
      out = io::DType::kUint16;
      return true;
    case io::StDType::kF16:
      out = io::DType::kFloat16;
      return true;
    case io::StDType::kI32:
      out = io::DType::kInt32;
      return true;
    case io::StDType::kU32:
      out = io::DType::kUint32;
      return true;
    case io::StDType::kF32:
      out = io::DType::kFloat32;
      return true;
    case io::StDType::kI64:
      out = io::DType::kInt64;
      return true;
    case io::StDType::kU64:
      out = io::DType::kUint64;
      return true;
    case io::StDType::kF64:
      out = io::DType::kFloat64;
      return true;
    default:
      return false;  // BF16, F8_E4M3, F8_E5M2
  }
}

// A tensor as the quantizers take it: float16/32/64 in place from the mapping, BF16 and FP8 widened to
// float32 (exact) in memory.
io::NpyArray as_array(const io::StTensor& t, const std::string& where,
                      const std::shared_ptr<const void>& owner) {
  io::DType d{};
  if (io_dtype_of(t.dtype, d)) return io::borrow_npy(where, d, t.shape, t.data, owner, owner != nullptr);
  const std::vector<float> v = st_to_float(t);
  std::vector<std::byte> bytes(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
  return io::make_npy(where, io::DType::kFloat32, t.shape, std::move(bytes));
}

// Receives one quantized tensor's .npz members (q, scale, zero_point, input_scale, codebook, meta) and
// stores them in the safetensors layout: q under NAME, meta in __metadata__[NAME], the rest as NAME.member.
class TensorMembers : public io::ArraySink {
 public:
  TensorMembers(std::string name, io::SafetensorsWriter& writer, std::map<std::string, std::string>& metadata)
      : name_(std::move(name)), writer_(writer), metadata_(metadata) {}
  void add_encoded(const std::string& member, std::vector<std::byte> npy_bytes) override {
    const io::NpyArray a = io::parse_npy(std::move(npy_bytes), name_ + "." + member);
    if (member == "meta") {
      metadata_[name_] = a.as_string();
      return;
    }
    const std::string name = member == "q" ? name_ : name_ + "." + member;
    writer_.add(name, st_dtype_of(a.dtype(), name), a.shape(), a.raw());
  }

 private:
  std::string name_;
  io::SafetensorsWriter& writer_;
  std::map<std::string, std::string>& metadata_;
};

std::uint64_t size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

const io::StTensor* find(const io::SafetensorsFile& f, const std::string& name) {
  for (const io::StTensor& t : f.tensors())
    if (t.name == name) return &t;
  return nullptr;
}

// A tensor under a plan: "" when the plan quantizes it (member_options then holds its spec), else why it
// is copied ("not in the plan", or "plan: fp16" with store_as set to the layer's float dtype).
std::string planned_tensor(const Plan& plan, const io::StTensor& t, const std::string& where,
                           CheckpointQuantOptions& member_options, io::StDType& store_as) {
  const auto layer = std::find_if(plan.layers.begin(), plan.layers.end(),
                                  [&](const PlanLayer& l) { return l.name == t.name; });
  if (layer == plan.layers.end()) return "not in the plan";
  if (!io::st_dtype_is_float(t.dtype))
    throw Error(where + ": the plan has a layer of this name, but the tensor is " +
                io::st_dtype_name(t.dtype));
  if (layer->shape != t.shape)
    throw Error(where + ": shape " + shape_string(t.shape) + ", the plan's layer " +
                shape_string(layer->shape));
  if (!layer->format.is_integer()) {
    store_as = layer->format.format == Format::kFloat16 ? io::StDType::kF16 : io::StDType::kF32;
    return "plan: " + to_string(layer->format);
  }
  Shape view;
  const QuantSpec spec = candidate_spec(layer->format, layer->shape, view);
  member_options.options_for = [spec](const Shape&) {
    FileQuantOptions o;
    o.spec = spec;
    return o;
  };
  return "";
}

// A floating tensor's values in F16 or F32 (the dtype a plan keeps a layer in).
std::vector<std::byte> convert_float(const io::StTensor& t, io::StDType to) {
  const std::vector<float> v = st_to_float(t);
  std::vector<std::byte> bytes(v.size() * io::st_dtype_size(to));
  if (to == io::StDType::kF32) {
    if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
    return bytes;
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::uint16_t h = float_to_half_bits(v[i]);
    std::memcpy(bytes.data() + 2 * i, &h, 2);
  }
  return bytes;
}

// The member names of one quantized tensor's layout (without NAME and the dot).
constexpr const char* kParamMembers[] = {"scale", "zero_point", "input_scale", "codebook"};

}  // namespace

bool is_safetensors_path(const std::string& path) {
  return path.ends_with(".safetensors") || path.ends_with(".safetensors.index.json");
}

CheckpointReport quantize_safetensors(const std::string& input, const std::string& output,
                                      const CheckpointQuantOptions& options) {
  io::check_output_differs(output, {input});
  { io::AtomicFile probe(output); }  // an unwritable folder fails before the work
  const io::SafetensorsCheckpoint model = io::SafetensorsCheckpoint::open(input);
  if (model.metadata().count(kSafetensorsQuantKey))
    throw Error(input + ": already quantized (__metadata__ has '" + kSafetensorsQuantKey + "')");
  if (model.tensors().empty()) throw Error(input + ": holds no tensors");
  if (options.plan && (!options.include.empty() || !options.exclude.empty()))
    throw Error(input + ": a plan names the tensors it quantizes; include/exclude patterns do not apply");
  std::size_t planned = 0;  // plan layers met, quantized or kept in a float format
  CheckpointReport report;
  report.input_bytes = model.file_bytes();
  // The tensors' data waits in a temporary file beside the output, not in memory: with the input mapped
  // and each tensor's pages dropped once used, a model of any size costs about its largest tensor.
  io::SafetensorsWriter writer(std::filesystem::path(output).parent_path().string());
  std::map<std::string, std::string> metadata = model.metadata();
  nlohmann::json index = {{"format", kSafetensorsQuantFormat},
                          {"quantized", nlohmann::json::array()},
                          {"copied", nlohmann::json::array()}};
  const std::size_t count = model.tensors().size();
  for (std::size_t i = 0; i < count; ++i) {
    const io::StTensor& t = *model.tensors()[i].tensor;
    const io::SafetensorsFile& shard = model.shards()[model.tensors()[i].shard];
    const std::string where = shard.name() + ":" + t.name;
    CheckpointEntry e;
    e.name = t.name;
    e.shape = t.shape;
    e.dtype_label = io::st_dtype_name(t.dtype);
    CheckpointQuantOptions member_options;
    io::StDType store_as = t.dtype;  // a copied tensor's dtype (a plan may keep a layer in F16 / F32)
    if (options.plan) {
      e.reason = planned_tensor(*options.plan, t, where, member_options, store_as);
      if (e.reason.empty()) ++planned;
    } else {
      e.reason = checkpoint_copy_reason(t.name, t.shape, io::st_dtype_is_float(t.dtype), e.dtype_label,
                                        options.include, options.exclude);
    }
    if (e.reason.empty()) {
      if (metadata.count(t.name))
        throw Error(where +
                    ": __metadata__ already has an entry under the tensor's name, where the quantized "
                    "layout keeps its meta");
      const io::NpyArray a = as_array(t, where, shard.owner());
      TensorMembers members(t.name, writer, metadata);
      e.report = detail::quantize_member(a, where, options.plan ? member_options : options,
                                         detail::QuantizedSink{"", &members, ""}, e.note);
      e.quantized = true;
      index["quantized"].push_back(t.name);
    } else if (store_as != t.dtype) {
      const std::vector<std::byte> bytes = convert_float(t, store_as);
      writer.add(t.name, store_as, t.shape, bytes);
      if (shard.owner()) io::release_mapped_pages(t.data);
      index["copied"].push_back(t.name);
    } else {
      writer.add(t.name, t.dtype, t.shape, t.data);
      if (shard.owner()) io::release_mapped_pages(t.data);
      index["copied"].push_back(t.name);
    }
    report.members.push_back(std::move(e));
    if (options.progress) options.progress(static_cast<double>(i + 1) / static_cast<double>(count));
  }
  if (options.plan && planned != options.plan->layers.size())
    for (const PlanLayer& l : options.plan->layers)
      if (std::none_of(report.members.begin(), report.members.end(),
                       [&](const CheckpointEntry& m) { return m.name == l.name; }))
        throw Error(input + ": the plan's layer " + l.name + " is not a tensor of this model");
  metadata[kSafetensorsQuantKey] = index.dump();
  writer.set_metadata(std::move(metadata));
  writer.write(output);
  report.output_bytes = size_or_zero(output);
  return report;
}

bool is_quantized_safetensors(const std::string& path) {
  try {
    return io::SafetensorsFile::open(path).metadata().count(kSafetensorsQuantKey) > 0;
  } catch (const Error&) {
    return false;
  }
}

CheckpointIndex read_safetensors_quant_index(const io::SafetensorsFile& file) {
  const auto it = file.metadata().find(kSafetensorsQuantKey);
  if (it == file.metadata().end())
    throw Error(file.name() + ": not a quantized safetensors file (no __metadata__ '" + kSafetensorsQuantKey +
                "')");
  CheckpointIndex index;
  try {
    const nlohmann::json j = nlohmann::json::parse(it->second);
    if (j.at("format").get<std::string>() != kSafetensorsQuantFormat)
      throw Error(file.name() + ": __metadata__ '" + kSafetensorsQuantKey + "' format is '" +
                  j.at("format").get<std::string>() + "', expected " + kSafetensorsQuantFormat);
    index.quantized = j.at("quantized").get<std::vector<std::string>>();
    index.copied = j.at("copied").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.name() + ": malformed __metadata__ '" + kSafetensorsQuantKey + "': " + e.what());
  }
  std::set<std::string> seen;
  for (const auto* list : {&index.quantized, &index.copied})
    for (const std::string& name : *list) {
      if (name.empty() || !seen.insert(name).second)
        throw Error(file.name() + ": malformed __metadata__ '" + kSafetensorsQuantKey + "': tensor '" + name +
                    "' is listed " + (name.empty() ? "without a name" : "twice"));
      if (!find(file, name))
        throw Error(file.name() + ": __metadata__ '" + kSafetensorsQuantKey + "' lists tensor '" + name +
                    "', which the file does not hold");
    }
  for (const std::string& name : index.quantized)
    if (!file.metadata().count(name))
      throw Error(file.name() + ": quantized tensor '" + name + "' has no meta in __metadata__");
  return index;
}

io::QuantizedFile read_safetensors_tensor(const io::SafetensorsFile& file, const std::string& name) {
  const std::string where = file.name() + ":" + name;
  std::vector<std::string> names;
  if (find(file, name)) names.push_back("q");
  const auto meta = file.metadata().find(name);
  if (meta != file.metadata().end()) names.push_back("meta");
  for (const char* m : kParamMembers)
    if (find(file, name + "." + m)) names.push_back(m);
  const auto member = [&](const std::string& m) -> io::NpyArray {
    if (m == "meta") return io::parse_npy(io::encode_npy_string(meta->second), where + " meta");
    const std::string tensor = m == "q" ? name : name + "." + m;
    const io::StTensor& t = *find(file, tensor);
    io::DType d{};
    if (!io_dtype_of(t.dtype, d))
      throw Error(file.name() + ":" + tensor + ": dtype " + io::st_dtype_name(t.dtype) +
                  " is not one a quantized tensor stores");
    return io::borrow_npy(file.name() + ":" + tensor, d, t.shape, t.data, file.owner(),
                          file.owner() != nullptr);
  };
  return io::read_quantized_members(names, member, where);
}

std::vector<CheckpointTensorSummary> summarize_safetensors(const std::string& path,
                                                           const std::string& reference) {
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  std::optional<io::SafetensorsCheckpoint> ref;
  std::map<std::string, const io::StTensor*> ref_tensors;
  if (!reference.empty()) {
    ref.emplace(io::SafetensorsCheckpoint::open(reference));
    for (const auto& e : ref->tensors()) ref_tensors[e.tensor->name] = e.tensor;
  }
  std::vector<CheckpointTensorSummary> out;
  for (const std::string& name : read_safetensors_quant_index(file).quantized) {
    const io::QuantizedFile f = read_safetensors_tensor(file, name);
    CheckpointTensorSummary s = detail::tensor_summary(name, f);
    if (ref) {
      const auto it = ref_tensors.find(name);
      if (it == ref_tensors.end()) throw Error(reference + ": no tensor named '" + name + "'");
      if (it->second->shape != f.meta.shape)
        throw Error(reference + ":" + name + ": shape " + shape_string(it->second->shape) +
                    " differs from the quantized file's " + shape_string(f.meta.shape));
      s.error = compare(st_to_float(*it->second), dequantize_to_float(f));
      s.has_reference = true;
    }
    out.push_back(std::move(s));
  }
  return out;
}

CheckpointReport dequantize_safetensors(const std::string& input, const std::string& output,
                                        io::StDType out_dtype) {
  io::check_output_differs(output, {input});
  if (out_dtype != io::StDType::kF32 && out_dtype != io::StDType::kF16 && out_dtype != io::StDType::kBF16)
    throw Error(std::string("dequantize writes F32, F16 or BF16, not ") + io::st_dtype_name(out_dtype));
  { io::AtomicFile probe(output); }
  const io::SafetensorsFile file = io::SafetensorsFile::open(input);
  const CheckpointIndex index = read_safetensors_quant_index(file);
  CheckpointReport report;
  report.input_bytes = size_or_zero(input);
  io::SafetensorsWriter writer(std::filesystem::path(output).parent_path().string());
  std::map<std::string, std::string> metadata = file.metadata();
  metadata.erase(kSafetensorsQuantKey);
  for (const std::string& name : index.quantized) {
    metadata.erase(name);
    const io::QuantizedFile f = read_safetensors_tensor(file, name);
    const std::vector<float> v = dequantize_to_float(f);
    if (out_dtype == io::StDType::kF32) {
      writer.add(name, out_dtype, f.meta.shape, std::as_bytes(std::span<const float>(v)));
    } else {  // little-endian hosts only, as every reader here
      std::vector<std::uint16_t> narrow(v.size());
      for (std::size_t i = 0; i < v.size(); ++i)
        narrow[i] = out_dtype == io::StDType::kF16 ? float_to_half_bits(v[i]) : float_to_bfloat16_bits(v[i]);
      writer.add(name, out_dtype, f.meta.shape, std::as_bytes(std::span<const std::uint16_t>(narrow)));
    }
    // The codes and parameters are used: their pages of the mapping leave the resident set.
    for (const char* m : {"", ".scale", ".zero_point", ".input_scale", ".codebook"})
      if (const io::StTensor* t = find(file, name + m); t && file.owner()) io::release_mapped_pages(t->data);
    report.members.push_back(
        {name, f.meta.shape, io::DType::kFloat32, io::st_dtype_name(out_dtype), true, "", {}, {}});
  }
  for (const std::string& name : index.copied) {
    const io::StTensor& t = *find(file, name);
    writer.add(name, t.dtype, t.shape, t.data);
    if (file.owner()) io::release_mapped_pages(t.data);
    report.members.push_back(
        {name, t.shape, io::DType::kFloat32, io::st_dtype_name(t.dtype), false, "copied", {}, {}});
  }
  writer.set_metadata(std::move(metadata));
  writer.write(output);
  report.output_bytes = size_or_zero(output);
  return report;
}

}  // namespace qk
