// Layers of a mixed-precision run from files (files/mixed_workload.hpp).
#include "quantkit/files/mixed_workload.hpp"

#include <filesystem>

#include "quantkit/core/quantize.hpp"
#include "quantkit/io/atomic_file.hpp"
#include "quantkit/files/plan_file.hpp"
#include "quantkit/mixed/plan.hpp"

namespace qk {

MixedWorkload open_mixed_workload(const std::vector<std::string>& inputs, const std::string& output) {
  const std::vector<ManifestLayer> listed = layers_from_inputs(inputs);
  MixedWorkload w;
  w.protect = inputs;
  if (inputs.size() == 1 && std::filesystem::is_directory(inputs[0]))
    w.protect.push_back((std::filesystem::path(inputs[0]) / "manifest.json").string());
  for (const auto& f : listed) w.protect.push_back(f.file);
  if (!output.empty()) io::check_output_differs(output, w.protect);
  w.loaded = load_layers(listed);
  for (std::size_t i = 0; i < listed.size(); ++i) {
    reject_nonfinite<float>(w.loaded[i].values, w.loaded[i].shape, listed[i].file);
    w.layers.push_back({w.loaded[i].name, w.loaded[i].shape, w.loaded[i].values});
    w.total_weights += w.loaded[i].values.size();
    w.files.push_back(listed[i].file);
  }
  return w;
}

}  // namespace qk
