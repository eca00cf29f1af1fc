// A linear layer's weight file quantized by an outlier-aware method (outlier/weight_methods.hpp) with
// calibration activations read from .npy files: WEIGHT.npy [out, in] + ACTS.npy... [..., in] -> the
// quantized-tensor .npz (io/qfile.hpp), plus `input_scale` for awq and smoothquant. float32 C-order
// activation files are memory-mapped and fed in batches of rows, so their size is not bounded by memory;
// other dtypes and orders are converted to float32 in memory first.
#pragma once

#include <string>
#include <vector>

#include "quantkit/core/progress.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/outlier/weight_methods.hpp"
#include "quantkit/ptq/stats.hpp"

namespace qk {

struct MethodFileReport {
  std::int64_t out = 0, in = 0;
  std::int64_t calibration_rows = 0;
  std::uint64_t output_bytes = 0;
  QuantizedLinear result;  // codes, parameters, alpha, weight and output errors (no dequantized weights)
  double weight_mse = 0;
  double rtn_output_error = 0;  // RTN's output error on the same statistics (0 without a Hessian)
  double bits_per_weight = 0;   // of the written payload (io::payload_bits_per_weight)
};

// Statistics of a layer's input streamed from .npy files [..., in] in batches of 4,096 rows (float32
// C-order files memory-mapped, others converted first). Errors name the file, and the row and column of a
// NaN/Inf. progress (optional) receives the fraction of rows read.
ActivationStats stream_activation_stats(const std::vector<std::string>& activations, std::int64_t in,
                                        bool with_hessian, const ProgressFn& progress = {});

// Quantized files of one linear layer (any method, element format or granularity; io/qfile.hpp) side by
// side: each file's dequantized weight against the FP32 reference [out, in], and, with calibration
// activations, the layer's output error on them (the Hessian is accumulated once for all files).
struct LayerFileError {
  std::string file;
  io::QuantizedFileMeta meta;
  std::uint64_t file_bytes = 0;
  double bits_per_weight = 0;  // file bytes * 8 / weights: codes, scales and every header included
  ErrorStats weight;
  bool has_output = false;
  OutputError output;
};
std::vector<LayerFileError> compare_layer_files(const std::vector<std::string>& quantized,
                                                const std::string& reference,
                                                const std::vector<std::string>& activations,
                                                const ProgressFn& progress = {});

// progress (optional; else options.progress) receives the fraction of the whole run done, 0..1,
// nondecreasing, ending at 1: reading the activations, then (awq, gptq) RTN's reference output error, then
// the method's own compute (per block of columns for gptq, per alpha and row block for awq). The Hessian
// is formed once, without a copy of the accumulator. Writes atomically; nothing is
// written when anything fails (mismatched widths, NaN in activations, a singular Hessian, ...). A method
// other than rtn without activation files throws a FileError (FileRemedy::kGiveActivations).
MethodFileReport quantize_file_with_method(const std::string& weights,
                                           const std::vector<std::string>& activations,
                                           const std::string& output, WeightMethod method,
                                           const WeightQuantOptions& options,
                                           const ProgressFn& progress = {});

// The same written as the weights the layer computes with (OUT.npy in the weight's float dtype: the
// quantized file dequantized, input_scale undone) instead of the quantized file: fake quantization with a
// method. output_bytes is the .npy's size.
MethodFileReport fake_quantize_file_with_method(const std::string& weights,
                                                const std::vector<std::string>& activations,
                                                const std::string& output, WeightMethod method,
                                                const WeightQuantOptions& options,
                                                const ProgressFn& progress = {});

}  // namespace qk
