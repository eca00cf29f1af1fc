// qtool quantize into GGUF: IN.gguf or IN.safetensors -> OUT.gguf --type T (files/gguf_quant.hpp).
#pragma once

#include <string>
#include <vector>

#include "common.hpp"
#include "file_quant.hpp"

namespace qtool {

struct GgufArgs {
  std::string type;                       // --type: q8_0, q4_0, ..., q6_K, f16, bf16, f32
  std::vector<std::string> tensor_types;  // --tensor-type GLOB=TYPE (repeatable, first match wins)
  std::vector<std::string> meta;          // --meta KEY=VALUE (safetensors input; string values)
  double target_bpw = 0;                  // --target-bpw B: a type per tensor within B bits/weight
  double target_bytes = 0;                // --target-bytes N: ... within an N-byte file
  std::string candidate_types;            // --candidate-types LIST: the types a budget chooses among
  std::string importance;                 // --importance FILE: llama.cpp imatrix .gguf or .npz
  bool any() const {
    return !type.empty() || !tensor_types.empty() || !meta.empty() || target_bpw > 0 || target_bytes > 0 ||
           !candidate_types.empty() || !importance.empty();
  }
};

void add_gguf_args(CLI::App& cmd, GgufArgs& args);
// Runs when the output is a .gguf; usage errors for the options that do not apply.
int run_gguf_quant(const FileQuantArgs& args, const GgufArgs& gguf, const Output& out);

}  // namespace qtool
