// Atomic file output: bytes go to a temporary file in the destination's folder; commit() fsyncs it and
// renames it over the destination. An uncommitted AtomicFile removes its temporary file when destroyed,
// so a failure never leaves half a file and never touches an existing file at the destination.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace qk::io {

class AtomicFile {
 public:
  // Creates the temporary file; throws qk::Error naming path when its folder is missing or unwritable.
  explicit AtomicFile(std::string path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  void write(std::span<const std::byte> bytes);
  // Closes the temporary file (if still open), fsyncs it, renames it to path() and fsyncs the folder.
  void commit();
  // For writers that fill temp_path() themselves (libzip): close our descriptor without committing.
  void close_descriptor();

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Throws qk::Error when output names the same file as one of inputs (same path, or the same inode
// through a link), so a command can never overwrite its own input.
void check_output_differs(const std::string& output, const std::vector<std::string>& inputs);

}  // namespace qk::io
