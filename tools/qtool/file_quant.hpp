// The shared flow of `qtool quantize` and `qtool fake-quant`: options -> library call -> report.
#pragma once

#include <string>

#include "common.hpp"

namespace qtool {

struct FileQuantArgs {
  std::string input;
  std::string output;
  SpecOptions spec;
  std::string calib;   // --calib calib.json: apply stored parameters ...
  std::string tensor;  // ... of this tensor (default: the input's file stem)
  bool explain = false;
  std::string format = "int";  // quantize --format: int, fp8-e4m3, fp8-e5m2, nf4
  std::vector<std::string> include, exclude;  // checkpoint members (shell patterns)
};

// checkpoints: the command takes a whole .npz checkpoint (--include / --exclude): quantize, not fake-quant.
void add_file_quant_args(CLI::App& cmd, FileQuantArgs& args, const char* output_help, bool checkpoints);
// plan_path: a mixed-precision plan for a safetensors model input (--plan), whose layers are its tensors.
int run_file_quant(const FileQuantArgs& args, const Output& out, bool fake,
                   const std::string& plan_path = "");

}  // namespace qtool
