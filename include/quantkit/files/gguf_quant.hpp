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
// (core/ggml_blocks.hpp), row by row, or with an importance vector ggml's importance-weighted quantizer
// (what llama-quantize --imatrix runs). The output streams: each tensor is converted in chunks of rows and
// written before the next is read, and the input's pages are dropped once used.
//
// Metadata: a GGUF input's keys and values are carried over unchanged and in order, except arrays of
// arrays (ggml's reader refuses them; they are left out and listed in the report), general.file_type
// (set to the llama_ftype of the requested type, or under a budget of the type holding the most weights)
// and general.quantization_version (2, ggml's GGML_QNT_VERSION), added at the end when absent. A
// safetensors input gets those two and the caller's extra entries (strings; general.architecture is the
// user's to give).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/core/progress.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/io/gguf.hpp"

namespace qk {

// llama.cpp's importance matrix (imatrix) for one tensor: per input column, the mean of x^2 over the
// calibration tokens that reached it. A 2-D weight has one vector of ne[0] values; a 3-D or 4-D one (a
// mixture of experts) has one per matrix, ne[2] * ne[3] of them, back to back.
struct TensorImportance {
  std::int64_t columns = 0;
  std::vector<float> values;  // columns * matrices, each >= 0 and finite
};
using ImportanceMap = std::map<std::string, TensorImportance>;

// Importance from a file, keyed by tensor name:
// - llama.cpp's imatrix GGUF (llama-imatrix's output): tensors NAME.in_sum2 (F32, ne = [columns,
//   matrices]) and NAME.counts (F32, ne = [1, matrices]); the importance is in_sum2 / counts (a matrix no
//   token reached gets all ones, so its error counts unweighted rather than not at all);
// - an .npz whose member NAME is either the importance itself (1-D: columns values) or activations of
//   the tensor's input (rank >= 2: [..., columns], float16/32/64), whose per-column mean of squares over
//   every leading index is the importance. Either gives one vector, used for every matrix of the tensor.
// Errors name the file and the entry (negative or non-finite values, counts that disagree).
ImportanceMap read_importance(const std::string& path);

// A size budget for the whole model: each tensor of rank >= 2 gets the candidate type that minimises the
// total error (mixed/selection.hpp's exact multiple-choice knapsack) among those whose blocks fit its
// rows; rank-1 tensors stay F32 and --tensor-type patterns pin theirs (both counted in the budget).
//  - kBitsPerWeight: tensor data bytes * 8 over every weight of the model (what llama.cpp reports as
//    BPW: every tensor counts, the header does not);
//  - kFileBytes: the whole output file, header and alignment padding included.
// The error of a tensor in a type is measured, not modelled: every row is quantized and dequantized and
// the squared error summed, weighted per column by the tensor's importance when one is given (then it
// approximates the squared error of the layer's output on the calibration data, as llama.cpp's imatrix
// does for one tensor). The plan minimises the sum over tensors.
enum class GgufBudgetKind { kNone, kBitsPerWeight, kFileBytes };
struct GgufBudget {
  GgufBudgetKind kind = GgufBudgetKind::kNone;
  double value = 0;
  std::vector<ggml::Type> candidates;  // empty: default_budget_candidates()
};
// Q2_K, Q3_K, Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q8_0 and F16.
std::vector<ggml::Type> default_budget_candidates();

struct GgufQuantOptions {
  ggml::Type type = ggml::Type::kQ8_0;                                // every tensor of rank >= 2
  std::vector<std::pair<std::string, ggml::Type>> tensor_types;       // GLOB -> type, first match wins
  std::vector<std::pair<std::string, io::GgufValue>> extra_metadata;  // safetensors input only
  GgufBudget budget;         // kNone: `type` for every tensor of rank >= 2
  ImportanceMap importance;  // by tensor name; quantizers and measured errors weigh columns by it
  int threads = 0;           // for measuring candidates and quantizing rows; 0: every core
  ProgressFn progress;       // fraction of the work done
};

struct GgufTensorReport {
  std::string name;
  Shape shape;       // outermost first
  std::string from;  // the input's type: "f16", "BF16", "q4_0" ...
  ggml::Type to{};
  std::string note;  // why the type differs from the requested one ("rank 1", a fallback, a pattern)
  std::uint64_t input_bytes = 0, output_bytes = 0;
  bool weighted = false;  // quantized with an importance vector
  // With a budget, every measured candidate's error (summed, importance-weighted squared error) and the
  // tensor's weighted signal energy (sum of importance * x^2); empty for a tensor the budget did not
  // choose for (rank 1, pinned).
  std::vector<std::pair<ggml::Type, double>> candidate_errors;
  double signal = 0;
};

struct GgufQuantReport {
  std::vector<GgufTensorReport> tensors;
  std::uint64_t input_bytes = 0, output_bytes = 0;  // whole files
  bool dequantized_input = false;                   // some input tensor was already block-quantized
  std::uint64_t weights = 0, data_bytes = 0;        // every tensor's elements and output bytes
  double bits_per_weight = 0;                       // data_bytes * 8 / weights
  // With a budget: the sum of the chosen types' errors, and the budget in bytes of tensor data (bits per
  // weight) or of file (file bytes).
  double total_error = 0;
  std::uint64_t budget_bytes = 0;
  ggml::Type file_type{};  // general.file_type's type: the one holding the most weights
  // Input metadata keys left out of the output: arrays of arrays, which ggml's reader refuses.
  std::vector<std::string> dropped_metadata;
};

// The type for a tensor (name, ne in ggml order) and, in `note`, why it is not options.type (empty when
// it is). Throws qk::Error when even F16 cannot hold it (never: F16's block is 1).
ggml::Type choose_gguf_type(const std::string& name, const std::vector<std::int64_t>& ne,
                            const GgufQuantOptions& options, std::string& note);

// llama.cpp's general.file_type (enum llama_ftype) for a model mostly of `type`: F32 0, F16 1, Q4_0 2,
// Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9, Q2_K 10, Q3_K 11 (Q3_K_S), Q4_K 14 (Q4_K_S), Q5_K 16 (Q5_K_S), Q6_K 18,
// BF16 32: the "_S" variants, since every tensor gets the one type (llama.cpp's _M mixes add more bits).
std::uint32_t llama_file_type(ggml::Type type);

// What quantize_gguf / safetensors_to_gguf would write, without writing: each tensor's type and bytes,
// and with a budget the measured errors (IN is a .gguf or a safetensors model).
GgufQuantReport plan_gguf(const std::string& input, const GgufQuantOptions& options);

// IN.gguf -> OUT.gguf. Errors name the file and the tensor; nothing is written when anything fails.
GgufQuantReport quantize_gguf(const std::string& input, const std::string& output,
                              const GgufQuantOptions& options);

// IN.safetensors (or a sharded index) -> OUT.gguf, tensor names kept, shapes reversed into ggml order.
// Floating tensors of F32, F16, BF16 (and F64, F8, widened to float32) are converted; integer tensors are
// refused (GGUF's plain-tensor readers expect floats), naming the tensor.
GgufQuantReport safetensors_to_gguf(const std::string& input, const std::string& output,
                                    const GgufQuantOptions& options);

}  // namespace qk
