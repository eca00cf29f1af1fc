// MappedFile: open, fstat, mmap read-only (see mapped_file.hpp).
#include "quantkit/io/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "quantkit/core/error.hpp"

namespace qk::io {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const int stat_errno = errno;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + (stat_ok ? ": not a regular file" : ": cannot stat: " + std::string(std::strerror(stat_errno))));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  void* map = nullptr;
  if (size > 0) {
    // A file truncated by someone else while mapped would fault on access (SIGBUS); the price of not
    // copying model files, which are not rewritten in place while a tool reads them.
    map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_errno = errno;
    ::close(fd);  // the mapping keeps the file open
    if (map == MAP_FAILED) throw Error(path + ": mmap failed: " + std::strerror(map_errno));
  } else {
    ::close(fd);
  }
  return std::shared_ptr<const MappedFile>(new MappedFile(path, map, size));
}

MappedFile::~MappedFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

void release_mapped_pages(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::byte* begin = bytes.data();
  const std::size_t to_boundary = (page - reinterpret_cast<std::uintptr_t>(begin) % page) % page;
  if (to_boundary >= bytes.size()) return;
  const std::size_t whole_pages = (bytes.size() - to_boundary) / page * page;
  // A private read-only mapping refaults dropped pages from the file, so failure is harmless.
  if (whole_pages > 0) ::madvise(const_cast<std::byte*>(begin + to_boundary), whole_pages, MADV_DONTNEED);
}

}  // namespace qk::io
