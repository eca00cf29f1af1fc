// Weights manifests.
#include "quantkit/files/manifest.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "quantkit/core/error.hpp"
#include "quantkit/io/npy.hpp"

namespace qk {

std::vector<ManifestLayer> read_manifest(const std::string& path) {
  std::filesystem::path file(path);
  if (std::filesystem::is_directory(file)) file /= "manifest.json";
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot open manifest");
  std::vector<ManifestLayer> layers;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    for (const auto& entry : j.at("layers")) {
      ManifestLayer layer;
      layer.name = entry.at("name").get<std::string>();
      layer.file = (file.parent_path() / entry.at("file").get<std::string>()).string();
      layer.shape = entry.at("shape").get<Shape>();
      if (!std::filesystem::exists(layer.file))
        throw Error(file.string() + ": layer " + layer.name + ": file " + layer.file + " is missing");
      layers.push_back(std::move(layer));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.string() + ": malformed manifest: " + e.what());
  }
  if (layers.empty()) throw Error(file.string() + ": manifest lists no layers");
  return layers;
}

std::vector<WeightLayer> load_manifest_layers(const std::string& path) {
  return load_layers(read_manifest(path));
}

std::vector<WeightLayer> load_layers(const std::vector<ManifestLayer>& layers) {
  std::vector<WeightLayer> out;
  for (const ManifestLayer& layer : layers) {
    const io::NpyArray array = io::read_npy(layer.file);
    if (array.shape() != layer.shape) {
      throw Error(layer.file + ": shape " + shape_string(array.shape()) + " differs from the manifest's " +
                  shape_string(layer.shape));
    }
    out.push_back({layer.name, layer.shape, array.to_vector<float>()});
  }
  return out;
}

}  // namespace qk
