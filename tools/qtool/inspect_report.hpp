// The parts of qtool inspect's reports, as text or JSON.
#pragma once

#include <nlohmann/json.hpp>

#include "quantkit/io/qfile.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qtool {

nlohmann::json stats_json(const qk::TensorStats& s);
void print_stats(const qk::TensorStats& s);
// What the file says about the method that made it (measured on its calibration set when written).
void print_method(const qk::io::MethodRecord& r, bool has_input_scale);
void print_error(const qk::ErrorStats& e);
nlohmann::json error_json(const qk::ErrorStats& e);
// The report on a quantized checkpoint (files/checkpoint_file.hpp), text or JSON.
int inspect_checkpoint(const std::string& path, const std::string& reference, bool json);
// The report on a safetensors model: its metadata and tensors, or, for a quantized one
// (files/safetensors_quant.hpp), each quantized tensor's format and error against --reference.
int inspect_safetensors(const std::string& path, const std::string& reference, bool json);
// The report on a GGUF file: version, alignment, metadata (values summarised) and a per-tensor table
// (name, shape, ggml type, bits per weight, bytes).
// A .gguf: metadata and per-tensor table; with a reference (.gguf or safetensors), each tensor's error.
int inspect_gguf(const std::string& path, const std::string& reference, bool json);

}  // namespace qtool
