// A safetensors model as Hugging Face stores it: one .safetensors file, or a sharded checkpoint, whose
// index `model.safetensors.index.json` ({"metadata": {...}, "weight_map": {tensor: shard file}}) names the
// shard of every tensor; the shards lie beside the index. Either is accepted wherever a .safetensors is.
//
// An index is checked before use: shard names are plain file names (no folder, no ".."), every tensor it
// names is in its shard, no tensor is in two shards, and no shard holds a tensor the index does not name.
// Each shard is validated as SafetensorsFile::open does. Errors name the index or the shard.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "quantkit/io/safetensors.hpp"

namespace qk::io {

class SafetensorsCheckpoint {
 public:
  // A .safetensors file, or an index (a path ending in .json).
  static SafetensorsCheckpoint open(const std::string& path);
  // Whether `path` names an index (ends with .json) rather than a .safetensors file.
  static bool is_index(const std::string& path);
  // tensors() points into shards(): moving keeps the pointers valid, copying would not.
  SafetensorsCheckpoint(SafetensorsCheckpoint&&) noexcept = default;
  SafetensorsCheckpoint& operator=(SafetensorsCheckpoint&&) noexcept = default;
  SafetensorsCheckpoint(const SafetensorsCheckpoint&) = delete;
  SafetensorsCheckpoint& operator=(const SafetensorsCheckpoint&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  struct Entry {
    const StTensor* tensor;
    std::size_t shard;
  };
  // Every tensor: shard by shard (in the order the index first names them), data order within a shard.
  const std::vector<Entry>& tensors() const { return tensors_; }
  // The first shard's __metadata__ (Hugging Face writes the same {"format": "pt"} into each).
  const std::map<std::string, std::string>& metadata() const { return shards_.front().metadata(); }
  // Bytes of every shard together.
  std::uint64_t file_bytes() const { return file_bytes_; }

 private:
  SafetensorsCheckpoint() = default;
  std::string path_;
  std::vector<SafetensorsFile> shards_;
  std::vector<Entry> tensors_;
  std::uint64_t file_bytes_ = 0;
};

}  // namespace qk::io
