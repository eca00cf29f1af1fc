// Internal to src/files: one member of a whole checkpoint through the quantizers, shared by the .npz
// checkpoints (checkpoint_file.cpp) and safetensors models (safetensors_quant.cpp).
#pragma once

#include <string>

#include "file_streaming.hpp"
#include "quantkit/files/checkpoint_file.hpp"

namespace qk::detail {

// Quantizes `a` into `sink` with options.options_for(its shape). A whole checkpoint mixes shapes: a group
// size that fits the linear layers may fit no row of a small conv or an odd embedding. Such a member is
// quantized per output channel instead (the finest granularity that fits any shape), as llama.cpp's
// quantizer falls back to another type for tensors whose rows do not hold whole blocks; `note` says so
// (empty when the spec fits as it is). Errors name `where` (container:member).
FileQuantReport quantize_member(const io::NpyArray& a, const std::string& where,
                                const CheckpointQuantOptions& options, const QuantizedSink& sink,
                                std::string& note);

// A quantized tensor's row of `qtool inspect`: its name, meta and payload bits per weight (no error yet).
CheckpointTensorSummary tensor_summary(const std::string& name, const io::QuantizedFile& file);

}  // namespace qk::detail
