// FILE.npy, ARCHIVE.npz:KEY, MODEL.safetensors:NAME or MODEL.onnx:NAME (files/tensor_input.hpp).
#include "quantkit/files/tensor_input.hpp"

#include <cstring>

#include "quantkit/core/error.hpp"
#include "quantkit/files/npy_header.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/files/onnx_quant.hpp"
#include "quantkit/io/safetensors_checkpoint.hpp"

namespace qk {

namespace {

const io::StTensor& find_model_tensor(const io::SafetensorsCheckpoint& model, const ModelMemberName& m) {
  for (const auto& e : model.tensors())
    if (e.tensor->name == m.tensor) return *e.tensor;
  throw Error(m.model + ": no tensor named " + m.tensor);
}

}  // namespace

std::optional<NpzMemberName> parse_npz_member(const std::string& input) {
  const auto colon = input.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  const std::string archive = input.substr(0, colon);
  if (archive.size() < 4 || archive.compare(archive.size() - 4, 4, ".npz") != 0) return std::nullopt;
  return NpzMemberName{archive, input.substr(colon + 1)};
}

std::optional<ModelMemberName> parse_model_member(const std::string& input) {
  for (const char* suffix : {".safetensors.index.json:", ".safetensors:", ".onnx:"}) {
    const auto at = input.find(suffix);
    if (at == std::string::npos) continue;
    const std::size_t split = at + std::strlen(suffix) - 1;
    if (split + 1 >= input.size()) return std::nullopt;
    return ModelMemberName{input.substr(0, split), input.substr(split + 1)};
  }
  return std::nullopt;
}

std::string tensor_input_path(const std::string& input) {
  if (const auto member = parse_model_member(input)) return member->model;
  const auto member = parse_npz_member(input);
  return member ? member->archive : input;
}

io::NpyArray read_tensor_input(const std::string& input) {
  if (const auto m = parse_model_member(input); m && is_onnx_path(m->model)) {
    Shape shape;
    const std::vector<float> values = read_onnx_weight(m->model, m->tensor, &shape);
    std::vector<std::byte> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return io::make_npy(input, io::DType::kFloat32, shape, std::move(bytes));
  }
  if (const auto m = parse_model_member(input)) {
    const io::SafetensorsCheckpoint model = io::SafetensorsCheckpoint::open(m->model);
    const io::StTensor& t = find_model_tensor(model, *m);
    if (!io::st_dtype_is_float(t.dtype))
      throw Error(input + ": " + io::st_dtype_name(t.dtype) + " is not a floating type");
    const std::vector<float> values = io::st_to_float(t);
    std::vector<std::byte> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return io::make_npy(input, io::DType::kFloat32, t.shape, std::move(bytes));
  }
  if (const auto member = parse_npz_member(input)) return io::read_npz_member(member->archive, member->key);
  return io::read_npy(input);
}

Shape tensor_input_shape(const std::string& input) {
  if (const auto m = parse_model_member(input); m && is_onnx_path(m->model)) return read_tensor_input(input).shape();
  if (const auto m = parse_model_member(input))
    return find_model_tensor(io::SafetensorsCheckpoint::open(m->model), *m).shape;
  if (parse_npz_member(input)) return read_tensor_input(input).shape();
  return read_npy_header(input).shape;
}

}  // namespace qk
