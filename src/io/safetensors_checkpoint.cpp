// Single-file and sharded safetensors checkpoints (see io/safetensors_checkpoint.hpp).
#include "quantkit/io/safetensors_checkpoint.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "quantkit/core/error.hpp"

namespace qk::io {

namespace {

std::uint64_t size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

// Index files are a few hundred KiB; one of more than 100 MB (the reference's header limit) is refused
// before it is read.
constexpr std::uintmax_t kMaxIndexBytes = 100'000'000;

nlohmann::json read_index(const std::string& path) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path + ": cannot open: " + ec.message());
  if (size > kMaxIndexBytes)
    throw Error(path + ": index of " + std::to_string(size) + " bytes exceeds the limit of " +
                std::to_string(kMaxIndexBytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace

bool SafetensorsCheckpoint::is_index(const std::string& path) { return path.ends_with(".json"); }

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& path) {
  SafetensorsCheckpoint c;
  c.path_ = path;
  if (!is_index(path)) {
    c.shards_.push_back(SafetensorsFile::open(path));
    for (const StTensor& t : c.shards_.front().tensors()) c.tensors_.push_back({&t, 0});
    c.file_bytes_ = size_or_zero(path);
    return c;
  }
  const nlohmann::json index = read_index(path);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw Error(path + ": not a safetensors index (no \"weight_map\" object)");
  // Shard names in the order the map first names them; each tensor's shard.
  std::vector<std::string> shard_names;
  std::map<std::string, std::size_t> shard_of;
  for (const auto& [tensor, value] : index["weight_map"].items()) {
    if (!value.is_string()) throw Error(path + ": weight_map entry '" + tensor + "' is not a file name");
    const std::string shard = value.get<std::string>();
    if (shard.empty() || shard == "." || shard == ".." || shard.find('/') != std::string::npos ||
        shard.find('\\') != std::string::npos)
      throw Error(path + ": weight_map entry '" + tensor + "' names '" + shard +
                  "', not a file beside the index");
    auto it = std::find(shard_names.begin(), shard_names.end(), shard);
    if (it == shard_names.end()) it = shard_names.insert(shard_names.end(), shard);
    shard_of[tensor] = static_cast<std::size_t>(it - shard_names.begin());
  }
  if (shard_names.empty()) throw Error(path + ": weight_map names no tensor");
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  for (const std::string& name : shard_names) {
    const std::string shard_path = (folder / name).string();
    c.shards_.push_back(SafetensorsFile::open(shard_path));
    c.file_bytes_ += size_or_zero(shard_path);
  }
  std::set<std::string> seen;
  for (std::size_t s = 0; s < c.shards_.size(); ++s)
    for (const StTensor& t : c.shards_[s].tensors()) {
      const auto it = shard_of.find(t.name);
      if (it == shard_of.end())
        throw Error(c.shards_[s].name() + ": tensor '" + t.name + "' is not in the index " + path);
      if (it->second != s)
        throw Error(c.shards_[s].name() + ": tensor '" + t.name + "' is also in " + shard_names[it->second] +
                    ", where the index puts it");
      seen.insert(t.name);
      c.tensors_.push_back({&t, s});
    }
  for (const auto& [tensor, s] : shard_of)
    if (!seen.count(tensor))
      throw Error(path + ": tensor '" + tensor + "' is not in its shard " + shard_names[s]);
  return c;
}

}  // namespace qk::io
