// A whole file mapped read-only into memory, for the readers of model containers (safetensors, and GGUF
// next) that use tensors in place instead of copying multi-gigabyte files.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace qk::io {

class MappedFile {
 public:
  // Maps `path` (a regular file; an empty one maps to no bytes); throws qk::Error naming it otherwise.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::string& path() const { return path_; }
  std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(map_), size_}; }

 private:
  MappedFile(std::string path, void* map, std::size_t size) : path_(std::move(path)), map_(map), size_(size) {}
  std::string path_;
  void* map_ = nullptr;  // null for an empty file
  std::size_t size_ = 0;
};

// Advises the kernel that the whole pages inside `bytes`, part of a read-only file mapping, will not be
// read again soon: they leave the resident set (a later read faults them back in from the file). A page
// shared with bytes outside the range is kept. Advice only: never fails.
void release_mapped_pages(std::span<const std::byte> bytes);

}  // namespace qk::io
