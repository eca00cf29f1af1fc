// A whole model against its original, tensor by tensor (what llama.cpp's quantize-stats reports): the
// error of every tensor of a GGUF (any type quantkit reads, dequantized as ggml does) or of a float
// safetensors model against the same-named tensor of the reference (.gguf or safetensors).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quantkit/core/tensor_view.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qk {

struct ModelTensorError {
  std::string name;
  Shape shape;       // outermost first
  std::string type;  // the model's stored type: "q4_K", "f16", "BF16" ...
  std::uint64_t bytes = 0;
  double bits_per_weight = 0;
  ErrorStats error;          // MSE, max |error|, SQNR against the reference tensor
  double relative_rmse = 0;  // sqrt(MSE / mean reference^2); 0 for an all-zero reference matched exactly
};

struct ModelComparison {
  std::vector<ModelTensorError> tensors;  // in the model's order
  ErrorStats total;                       // over every element of every tensor
  double relative_rmse = 0;
  std::vector<std::string> reference_only;  // reference tensors the model lacks
};

// Throws naming the file and tensor when a model tensor is missing from the reference or its shape
// differs. Streams both in chunks of rows; memory stays small whatever the models' size.
ModelComparison compare_model(const std::string& model, const std::string& reference);

}  // namespace qk
