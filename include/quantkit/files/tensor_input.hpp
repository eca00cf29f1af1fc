// One tensor named on a command line or by a caller: FILE.npy, ARCHIVE.npz:KEY for one member of an .npz
// (a checkpoint saved with numpy.savez), as `qtool quantize`, `fake-quant` and `calibrate` take them, or
// MODEL.safetensors:NAME (MODEL.safetensors.index.json:NAME for a sharded one) for one floating tensor of
// a safetensors model, or MODEL.onnx:NAME for one float weight of an ONNX model, as a mixed-precision plan
// names the tensors of a model.
#pragma once

#include <optional>
#include <string>

#include "quantkit/core/tensor_view.hpp"
#include "quantkit/io/npy.hpp"

namespace qk {

struct NpzMemberName {
  std::string archive;
  std::string key;
};

// ARCHIVE.npz:KEY split at the last ':' after ".npz"; nullopt for anything else.
std::optional<NpzMemberName> parse_npz_member(const std::string& input);

struct ModelMemberName {
  std::string model;   // the .safetensors file, the index or the .onnx model
  std::string tensor;  // the tensor's name (which may itself hold ':')
};
// MODEL.safetensors:NAME, MODEL.safetensors.index.json:NAME or MODEL.onnx:NAME, split after the model's
// suffix; nullopt for
// anything else.
std::optional<ModelMemberName> parse_model_member(const std::string& input);

// The file that holds the tensor (the archive for ARCHIVE.npz:KEY): what an output must not overwrite.
std::string tensor_input_path(const std::string& input);

// Reads the tensor: a .npy memory-mapped as io::read_npy does, a member of an .npz into memory (its
// messages name ARCHIVE.npz:KEY), a safetensors model's tensor as float32 (F16, BF16, F8 and F64 widened
// or narrowed as st_to_float does; an integer tensor is refused).
io::NpyArray read_tensor_input(const std::string& input);

// The tensor's shape, from the headers only.
Shape tensor_input_shape(const std::string& input);

}  // namespace qk
