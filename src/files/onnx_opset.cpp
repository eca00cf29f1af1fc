#include "onnx_opset.hpp"

#include "onnx_model.hpp"

namespace qk::onnxfile {
OpsetUpgrade upgrade_opset(onnx::ModelProto& model, std::int64_t target,
                           const std::function<std::string(const std::string&)>&) {
  OpsetUpgrade up{default_opset(model), target, {}};
  set_default_opset(model, target);
  if (model.ir_version() < 7) model.set_ir_version(target >= 21 ? 10 : 7);
  if (target >= 21 && model.ir_version() < 10) model.set_ir_version(10);
  return up;
}
}  // namespace qk::onnxfile
