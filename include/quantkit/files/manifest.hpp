// A weights manifest (manifest.json beside .npy files: {"layers": [{"name", "file", "shape", ...}]}),
// the layout of the bundled Silero VAD weights: "name" a string, "file" a path relative to the manifest,
// "shape" the array's dimensions (checked against the file); optional "acts", a .npy of the layer's input
// activations relative to the manifest (mixed precision, files/mixed_workload.hpp); other fields are
// ignored.
#pragma once

#include <string>
#include <vector>

#include "quantkit/core/tensor_view.hpp"
#include "quantkit/ptq/weight_layer.hpp"

namespace qk {

struct ManifestLayer {
  std::string name;
  std::string file;  // absolute or relative to the current folder (resolved against the manifest's folder)
  Shape shape;
  std::string acts;  // optional "acts": the layer's input activations (.npy, resolved as `file`); or empty
};

// Reads manifest.json (a path to the file or to its folder); checks every listed file exists. Errors
// name the manifest, the layer and the field. A folder without manifest.json is read as a folder of
// weights: every .npy in it is a layer named by its file stem (in name order), its shape from its header.
std::vector<ManifestLayer> read_manifest(const std::string& path);

// Loads every layer as float32, checking the shape against the manifest.
std::vector<WeightLayer> load_manifest_layers(const std::string& path);
// The same for layers already listed (a manifest read earlier, or .npy files named on a command line).
std::vector<WeightLayer> load_layers(const std::vector<ManifestLayer>& layers);

}  // namespace qk
