// A safetensors model (one file or a sharded checkpoint's index, io/safetensors_checkpoint.hpp) quantized
// into one .safetensors file, and back. The quantized layout holds what a quantized .npz holds
// (io/qfile.hpp) in safetensors form; for a quantized tensor NAME:
//   NAME               the codes: I8 (signed) or U8 with the original shape at 8 bits; below 8 bits packed
//                      U8 [bytes], element 2k in the low nibble of byte k at 4 bits (core/pack.hpp)
//   NAME.scale         F32 (F16 with scale_dtype float16), the .npz scale's shape
//   NAME.zero_point    I32, the same shape; absent when every zero point is 0 (read it as 0)
//   NAME.input_scale   F32 [prod(shape[1:])], where the .npz has it (AWQ, SmoothQuant)
//   NAME.codebook      F32 [2^bits], for FP8 and NF4
//   __metadata__[NAME] the .npz meta JSON (bits, scheme, granularity, axis, group size, shape, ...)
// Every other tensor (integer, rank < 2, or left out by include/exclude) is copied byte for byte under
// its name and dtype. __metadata__ keeps the input's entries and adds
//   "quantkit": {"format": "quantkit.qsafetensors/1", "quantized": [names], "copied": [names]}.
// A tensor is quantized by exactly the code of a single .npy (files/quantize_file.hpp): its codes are
// the ones `qtool quantize` writes for it as .npy. BF16 and FP8 tensors are widened to float32 first
// (exact), so their meta says float32. A sharded input gives one output file.
//
// The output is assembled in memory (the quantized size plus the copied tensors) and written atomically;
// the input is memory-mapped and each tensor used in place.
#pragma once

#include <string>
#include <vector>

#include "quantkit/files/checkpoint_file.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/io/safetensors.hpp"

namespace qk {

inline constexpr const char* kSafetensorsQuantFormat = "quantkit.qsafetensors/1";
inline constexpr const char* kSafetensorsQuantKey = "quantkit";  // the __metadata__ entry of the index

// Whether `path` names a safetensors model: *.safetensors, or a sharded checkpoint's
// *.safetensors.index.json.
bool is_safetensors_path(const std::string& path);

// IN (.safetensors or index) -> OUT.safetensors. Errors name the file and the tensor; nothing is written
// when anything fails.
CheckpointReport quantize_safetensors(const std::string& input, const std::string& output,
                                      const CheckpointQuantOptions& options);

// Whether the .safetensors at path was written by quantize_safetensors; never throws.
bool is_quantized_safetensors(const std::string& path);
// The "quantkit" index of a quantized file, checked: each name once, each quantized name with its codes
// tensor and meta, each copied name a tensor.
CheckpointIndex read_safetensors_quant_index(const io::SafetensorsFile& file);
// One quantized tensor, validated as read_quantized validates a file (messages name path:tensor). The
// codes are viewed in place: `file` must outlive the result.
io::QuantizedFile read_safetensors_tensor(const io::SafetensorsFile& file, const std::string& name);

// Format and bits per weight of each quantized tensor and, with the original model (a .safetensors or an
// index) as reference, its error against the original tensor.
std::vector<CheckpointTensorSummary> summarize_safetensors(const std::string& path,
                                                           const std::string& reference = "");

// A quantized .safetensors back to a float model: quantized tensors dequantized to out_dtype (F32, F16 or
// BF16), copied ones copied; the same names and shapes as the original, and its __metadata__ entries.
CheckpointReport dequantize_safetensors(const std::string& input, const std::string& output,
                                        io::StDType out_dtype = io::StDType::kF32);

}  // namespace qk
