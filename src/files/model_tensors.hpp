// Internal to src/files: the tensors of a GGUF or safetensors model as sources of float rows, whatever the
// container, for the GGUF writer (gguf_quant.cpp), the budget planner (gguf_budget.cpp) and the error
// report (gguf_compare.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/files/gguf_quant.hpp"
#include "quantkit/io/gguf.hpp"
#include "quantkit/io/safetensors_checkpoint.hpp"

namespace qk::detail {

struct ModelTensor {
  std::string name;
  std::string where;             // "file:tensor", for messages
  std::vector<std::int64_t> ne;  // ggml order: ne[0] is the row length
  std::string from;              // the stored type: "f16", "BF16", "q4_0" ...
  std::uint64_t bytes = 0;       // stored bytes
  bool block_quantized = false;  // a ggml block type (dequantized to read)
  // Rows [first, first + rows) as floats into out (rows * row_length() values); drops their input pages.
  std::function<void(std::int64_t first, std::int64_t rows, float* out)> read_rows;

  std::int64_t row_length() const { return ne.empty() ? 1 : ne[0]; }
  // Rows of ne[0] elements (a rank-0 tensor is one row of one element).
  std::int64_t row_count() const;
  std::int64_t numel() const { return row_length() * row_count(); }
};

// An open model: the file(s) stay mapped while this lives, and the tensors' readers point into them.
struct ModelTensors {
  std::string path;
  std::unique_ptr<io::GgufFile> gguf;                      // a .gguf input
  std::unique_ptr<io::SafetensorsCheckpoint> safetensors;  // a .safetensors file or index
  std::vector<ModelTensor> tensors;
  std::uint64_t file_bytes = 0;

  const ModelTensor* find(const std::string& name) const;
};

// A .gguf (tensors of F32, F16, BF16 or any block type ggml::dequantize_row reads; others are refused,
// naming the tensor) or a safetensors model (floating tensors only, at most 4 dimensions).
ModelTensors open_model_tensors(const std::string& path);

// Rows per chunk when streaming a tensor of rows of `row` elements: about 4 MiB of floats, whole rows.
std::int64_t rows_per_chunk(std::int64_t row);

// `requested` threads, or every core for 0.
int thread_count(int requested);

// The tensor's importance, checked against its shape (columns = ne[0], one vector per matrix); null when
// the map has none for it. Throws naming the tensor on a mismatch.
const TensorImportance* find_importance(const ModelTensor& t, const ImportanceMap& map);
// The importance of row `row` of the tensor (its matrix's vector), or null.
const float* row_importance(const TensorImportance* importance, const ModelTensor& t, std::int64_t row);

}  // namespace qk::detail
