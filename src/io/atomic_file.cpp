// AtomicFile: write to "<dir>/.<name>.tmpXXXXXX", fsync, rename over the destination, fsync the folder.
#include "quantkit/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "quantkit/core/error.hpp"

namespace qk::io {

namespace {

std::string errno_text() { return std::strerror(errno); }

// The process umask without changing it (umask(2) would race with other threads): Linux reports it in
// /proc/self/status since 4.7; 022 is the common default when it cannot be read.
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
  }
  return 022;
}

void fsync_folder(const std::string& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // the rename is done; a folder we cannot open cannot be synced either
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  const std::filesystem::path p(path_);
  if (path_.empty() || !p.has_filename()) throw Error(path_ + ": not a file name");
  const std::string folder = p.has_parent_path() ? p.parent_path().string() : ".";
  temp_path_ = folder + "/." + p.filename().string() + ".tmpXXXXXX";
  fd_ = ::mkostemp(temp_path_.data(), O_CLOEXEC);
  if (fd_ < 0) {
    const std::string reason = errno_text();
    temp_path_.clear();
    throw Error(path_ + ": cannot create a temporary file in '" + folder + "': " + reason);
  }
  // mkstemp creates the file 0600; the result should carry the permissions a plain open() would give.
  ::fchmod(fd_, 0666 & ~current_umask());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  if (fd_ < 0) throw Error(path_ + ": write after the temporary file was closed");
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path_ + ": write failed: " + errno_text());
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
}

void AtomicFile::close_descriptor() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0 && errno != EINTR)
    throw Error(path_ + ": closing the temporary file failed: " + errno_text());
}

void AtomicFile::commit() {
  if (committed_) throw Error(path_ + ": already committed");
  if (fd_ < 0) {
    // Someone else (libzip) wrote temp_path(): open it again only to fsync it.
    fd_ = ::open(temp_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      throw Error(path_ + ": cannot reopen the temporary file '" + temp_path_ + "': " + errno_text());
  }
  if (::fsync(fd_) != 0) throw Error(path_ + ": fsync failed: " + errno_text());
  close_descriptor();
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
    throw Error(path_ + ": rename failed: " + errno_text());
  committed_ = true;
  const std::filesystem::path p(path_);
  fsync_folder(p.has_parent_path() ? p.parent_path().string() : ".");
}

void check_output_differs(const std::string& output, const std::vector<std::string>& inputs) {
  struct stat out_stat {};
  const bool output_exists = ::stat(output.c_str(), &out_stat) == 0;
  const std::filesystem::path out_path = std::filesystem::path(output).lexically_normal();
  for (const std::string& input : inputs) {
    bool same = std::filesystem::path(input).lexically_normal() == out_path;
    struct stat in_stat {};
    if (!same && output_exists && ::stat(input.c_str(), &in_stat) == 0) {
      same = in_stat.st_dev == out_stat.st_dev && in_stat.st_ino == out_stat.st_ino;
    }
    if (same) throw Error(output + ": the output is the same file as the input '" + input + "'");
  }
}

}  // namespace qk::io
