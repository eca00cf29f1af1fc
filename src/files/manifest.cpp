// Weights manifests.
#include "quantkit/files/manifest.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "quantkit/core/error.hpp"
#include "quantkit/files/npy_header.hpp"
#include "quantkit/files/tensor_input.hpp"
#include "quantkit/io/npy.hpp"

namespace qk {

namespace {

// A folder without manifest.json: every .npy in it is a layer named by its file stem, in name order, with
// the shape its header gives.
std::vector<ManifestLayer> npy_folder_layers(const std::filesystem::path& folder) {
  std::vector<ManifestLayer> layers;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".npy") continue;
    layers.push_back({entry.path().stem().string(),
                      entry.path().string(),
                      read_npy_header(entry.path().string()).shape,
                      {}});
  }
  std::sort(layers.begin(), layers.end(),
            [](const ManifestLayer& x, const ManifestLayer& y) { return x.name < y.name; });
  if (layers.empty())
    throw Error(folder.string() +
                ": no manifest.json and no .npy files (a folder of weights holds one or the other)");
  return layers;
}

// entry[key] as T, or an error naming the manifest, the layer and the field.
template <class T>
T field(const nlohmann::json& entry, const char* key, const std::string& where, const char* expected) {
  if (!entry.is_object() || !entry.contains(key))
    throw Error(where + ": field \"" + key + "\" is missing (" + expected + ")");
  try {
    return entry.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": field \"" + key + "\" is " + entry.at(key).dump() + ", expected " + expected);
  }
}

}  // namespace

std::vector<ManifestLayer> read_manifest(const std::string& path) {
  std::filesystem::path file(path);
  if (std::filesystem::is_directory(file)) {
    if (!std::filesystem::exists(file / "manifest.json")) return npy_folder_layers(file);
    file /= "manifest.json";
  }
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot open manifest");
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(file.string() + ": not valid JSON");
  if (!j.is_object() || !j.contains("layers") || !j.at("layers").is_array())
    throw Error(file.string() + R"(: expected {"layers": [{"name", "file", "shape"}, ...]})");
  std::vector<ManifestLayer> layers;
  std::size_t index = 0;
  for (const auto& entry : j.at("layers")) {
    const std::string at = file.string() + ": layer " + std::to_string(index++);
    ManifestLayer layer;
    layer.name = field<std::string>(entry, "name", at, "a string");
    const std::string where = file.string() + ": layer " + layer.name;
    layer.file =
        (file.parent_path() / field<std::string>(entry, "file", where, "a path relative to the manifest"))
            .string();
    layer.shape = field<Shape>(entry, "shape", where, "a list of dimensions");
    if (!std::filesystem::exists(layer.file)) throw Error(where + ": file " + layer.file + " is missing");
    if (entry.contains("acts")) {
      layer.acts =
          (file.parent_path() / field<std::string>(entry, "acts", where, "a path relative to the manifest"))
              .string();
      if (!std::filesystem::exists(layer.acts))
        throw Error(where + ": acts file " + layer.acts + " is missing");
    }
    layers.push_back(std::move(layer));
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
    const io::NpyArray array = read_tensor_input(layer.file);  // FILE.npy, or MODEL.safetensors:NAME
    if (array.shape() != layer.shape) {
      throw Error(layer.file + ": layer " + layer.name + ": shape " + shape_string(array.shape()) +
                  " differs from the manifest's " + shape_string(layer.shape));
    }
    out.push_back({layer.name, layer.shape, array.to_vector<float>()});
  }
  return out;
}

}  // namespace qk
