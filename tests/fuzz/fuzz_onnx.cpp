// libFuzzer target: the fuzz input is an .onnx file (files/onnx_quant.hpp), written to a temporary folder
// of its own (a model may name external data files beside it). inspect_onnx must either succeed or throw
// qk::Error; a model that inspects must also go through quantize_onnx (every weight eligible: min_elements
// 1; weight-only and dynamic) with the same outcome, and the output must read back. The seed corpus
// (corpus/onnx) holds small models: Conv with bias, MatMul + Gemm, an opset-11 Constant weight with an
// Unsqueeze, an If subgraph with its own initializer.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "quantkit/core/error.hpp"
#include "quantkit/files/onnx_quant.hpp"

namespace {
const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("qk-fuzz-onnx-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = (scratch_dir() / "model.onnx").string();
  const std::string out = (scratch_dir() / "out.onnx").string();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }
  try {
    qk::inspect_onnx(path);
  } catch (const qk::Error&) {
    return 0;
  }
  for (const auto mode : {qk::OnnxQuantMode::kWeightOnly, qk::OnnxQuantMode::kDynamic}) {
    qk::OnnxQuantOptions options;
    options.mode = mode;
    options.min_elements = 1;
    try {
      qk::quantize_onnx(path, out, options);
    } catch (const qk::Error&) {
      continue;  // e.g. an opset the upgrade refuses
    }
    qk::inspect_onnx(out, path);  // what we wrote must read back: no catch
  }
  return 0;
}
