// Raising a model's default-domain (ai.onnx) opset, so that rewrites can use what newer opsets define
// (per-channel DequantizeLinear needs 13, blocked INT4 DequantizeLinear 21). Private to src/files.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace qk::onnxfile {

struct OpsetUpgrade {
  std::int64_t from = 0, to = 0;
  std::vector<std::string> converted;  // what changed, one entry per op: "Squeeze x3", "Softmax x1", ...
};

// The targets upgrade_opset accepts.
inline constexpr std::int64_t kMinTargetOpset = 13;
inline constexpr std::int64_t kMaxTargetOpset = 21;

// Rewrites every node of the default domain (""/"ai.onnx") in the main graph and all subgraphs (If/Loop/Scan
// attributes, recursively) from the model's opset to `target` (kMinTargetOpset..kMaxTargetOpset; only
// upward), converting the ops whose definition changed in a way that matters, and throwing qk::Error naming
// every op it cannot convert ("cannot raise the opset from 9 to 13: Scan (1 node: loop) ..."); the model is
// unchanged when it throws. Sets the default opset import to `target` and ir_version to at least the IR
// version that opset needs (13 -> 7, 21 -> 10). Other domains are left alone. A model already at or above
// `target` is returned unchanged (from == to). `fresh` returns an unused value name for each initializer or
// node it adds (given a base name).
OpsetUpgrade upgrade_opset(onnx::ModelProto& model, std::int64_t target,
                           const std::function<std::string(const std::string&)>& fresh);

}  // namespace qk::onnxfile
