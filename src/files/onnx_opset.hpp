// Raising a model's default-domain opset (stub until the converter lands).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace qk::onnxfile {
struct OpsetUpgrade {
  std::int64_t from = 0, to = 0;
  std::vector<std::string> converted;
};
OpsetUpgrade upgrade_opset(onnx::ModelProto& model, std::int64_t target,
                           const std::function<std::string(const std::string&)>& fresh);
}  // namespace qk::onnxfile
