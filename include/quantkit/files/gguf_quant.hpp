// Whole models into GGUF files that llama.cpp loads: a GGUF re-quantized to ggml's block types (what
// llama.cpp's `llama-quantize IN OUT TYPE` does), or a safetensors model written as GGUF.
//
// Which type each tensor gets (choose_gguf_type):
// - the type of the first options.tensor_types entry (GLOB, TYPE) whose pattern matches the tensor's name
// (fnmatch), else
// - a tensor of one dimension (norms, biases) stays F32, as llama.cpp keeps it; every other tensor gets
//   the requested type;
// - a row length (ne[0]) that is not a multiple of the type's block falls back, as llama.cpp's quantizer
//   does, to the nearest type whose block fits: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K and
//   Q3_K -> Q4_0 (llama.cpp takes IQ4_NL, which quantkit does not write), and a row that holds no
//   block of 32 to F16. The report says so for that tensor.
// Source tensors are F32, F16, BF16 or any block type ggml::dequantize_row reads (an already quantized
// model is dequantized first: the report says so). Quantization is ggml's reference quantizer
// (core/ggml_blocks.hpp), row by row. The output streams: each tensor is converted in chunks of rows and
// written before the next is read, and the input's pages are dropped once used.
//
// Metadata: a GGUF input's keys and values are carried over unchanged and in order, except
// general.file_type (set to the llama_ftype of the requested type) and general.quantization_version (2,
// ggml's GGML_QNT_VERSION), added at the end when absent. A safetensors input gets those two and the
// caller's extra entries (--meta KEY=VALUE, strings; general.architecture is the user's to give).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/core/progress.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/io/gguf.hpp"

namespace qk {

struct GgufQuantOptions {
  ggml::Type type = ggml::Type::kQ8_0;                                // every tensor of rank >= 2
  std::vector<std::pair<std::string, ggml::Type>> tensor_types;       // GLOB -> type, first match wins
  std::vector<std::pair<std::string, io::GgufValue>> extra_metadata;  // safetensors input only
  ProgressFn progress;                                                // fraction of the data done
};

struct GgufTensorReport {
  std::string name;
  Shape shape;       // outermost first
  std::string from;  // the input's type: "f16", "BF16", "q4_0" ...
  ggml::Type to{};
  std::string note;  // why the type differs from the requested one ("rank 1", a fallback, a pattern)
  std::uint64_t input_bytes = 0, output_bytes = 0;
};

struct GgufQuantReport {
  std::vector<GgufTensorReport> tensors;
  std::uint64_t input_bytes = 0, output_bytes = 0;  // whole files
  bool dequantized_input = false;                   // some input tensor was already block-quantized
};

// The type for a tensor (name, ne in ggml order) and, in `note`, why it is not options.type (empty when
// it is). Throws qk::Error when even F16 cannot hold it (never: F16's block is 1).
ggml::Type choose_gguf_type(const std::string& name, const std::vector<std::int64_t>& ne,
                            const GgufQuantOptions& options, std::string& note);

// llama.cpp's general.file_type (enum llama_ftype) for a model mostly of `type`: F32 0, F16 1, Q4_0 2,
// Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9, Q2_K 10, Q3_K 11 (Q3_K_S), Q4_K 14 (Q4_K_S), Q5_K 16 (Q5_K_S), Q6_K 18,
// BF16 32: the "_S" variants, since every tensor gets the one type (llama.cpp's _M mixes add more bits).
std::uint32_t llama_file_type(ggml::Type type);

// IN.gguf -> OUT.gguf. Errors name the file and the tensor; nothing is written when anything fails.
GgufQuantReport quantize_gguf(const std::string& input, const std::string& output,
                              const GgufQuantOptions& options);

// IN.safetensors (or a sharded index) -> OUT.gguf, tensor names kept, shapes reversed into ggml order.
// Floating tensors of F32, F16, BF16 (and F64, F8, widened to float32) are converted; integer tensors are
// refused (GGUF's plain-tensor readers expect floats), naming the tensor.
GgufQuantReport safetensors_to_gguf(const std::string& input, const std::string& output,
                                    const GgufQuantOptions& options);

}  // namespace qk
