// The ONNX entry points of a quantkit built without libonnx-dev (src/CMakeLists.txt): they say so.
#include "quantkit/core/error.hpp"
#include "quantkit/files/onnx_quant.hpp"

namespace qk {

namespace {
[[noreturn]] void unavailable(const std::string& path) {
  throw Error(path +
              ": this quantkit was built without ONNX support (install libonnx-dev and libprotobuf-dev, "
              "then rebuild)");
}
}  // namespace

bool is_onnx_path(const std::string& path) { return path.size() > 5 && path.ends_with(".onnx"); }
OnnxQuantReport quantize_onnx(const std::string& input, const std::string&, const OnnxQuantOptions&) {
  unavailable(input);
}
OnnxInspectReport inspect_onnx(const std::string& path, const std::string&) { unavailable(path); }
std::vector<std::pair<std::string, std::vector<std::int64_t>>> onnx_weight_shapes(const std::string& path) {
  unavailable(path);
}
std::vector<float> read_onnx_weight(const std::string& path, const std::string&, std::vector<std::int64_t>*) {
  unavailable(path);
}

}  // namespace qk
