// Batched reads of byte ranges from one file, bypassing the page cache where the file system allows it:
// the disk tier of the embedding row store (files/row_store.hpp).
//
// Direct I/O (O_DIRECT) reads straight into the caller's buffer, so rows read from disk never fill the OS
// page cache (which no RAM budget of ours could bound). Its rule: offset, length and buffer address all
// multiples of the device's logical block size; kDirectAlignment (4096) satisfies every block size Linux
// uses. Where the file system refuses O_DIRECT (procfs, tmpfs before Linux 6.6, some network file systems:
// at open, or at the first read, which opening probes) the reader falls back to buffered reads and says so
// (direct() and fallback_reason()).
//
// Many reads are kept in flight at once, which is what an SSD needs to reach its rate: io_uring (liburing)
// where the kernel offers it, else a pool of threads each issuing blocking pread()s. The choice is made
// when the reader opens (io_uring can be missing from the build, the kernel, or a container's seccomp
// filter), and backend() reports which one runs.
//
// A reader is used by one thread at a time (it owns its ring and its descriptor); give each thread its own.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace qk::io {

inline constexpr std::int64_t kDirectAlignment = 4096;

enum class ReadBackend { kAuto, kIoUring, kPread };
const char* to_string(ReadBackend backend);  // "auto", "io_uring", "pread"
ReadBackend parse_read_backend(const std::string& text);

struct BlockReaderOptions {
  bool direct = true;                        // try O_DIRECT
  ReadBackend backend = ReadBackend::kAuto;  // io_uring if it works here, else pread
  int queue_depth = 32;  // reads in flight: ring entries (the pread pool: depth / 4 threads)
};

struct ReadRequest {
  std::int64_t offset = 0;
  std::int64_t length = 0;
  std::uint8_t* dst = nullptr;  // with direct I/O: all three aligned to kDirectAlignment
};

class BlockReader {
 public:
  // Opens path read-only. Throws qk::Error naming path when it is missing, not a regular file, or
  // unreadable, or when io_uring is asked for and cannot run.
  BlockReader(const std::string& path, const BlockReaderOptions& options = {});
  ~BlockReader();
  BlockReader(const BlockReader&) = delete;
  BlockReader& operator=(const BlockReader&) = delete;

  // Performs every request; returns when all are complete. A read that ends past the end of the file
  // stops there (what lies in dst past the end is unspecified: a buffered read leaves it, a direct read may
  // zero it). Throws qk::Error naming the file on an I/O error, or when the file ends before the size it
  // had when opened; no read is left in flight when it throws.
  void read(std::span<const ReadRequest> requests);

  const std::string& path() const { return path_; }
  std::int64_t file_size() const { return file_size_; }
  bool direct() const { return direct_; }
  ReadBackend backend() const;
  // Why direct I/O or io_uring is not in use ("" when both are).
  const std::string& fallback_reason() const { return fallback_reason_; }

  class Engine;  // io_uring or the pread pool (src/io/block_reader_*.cpp)

 private:
  std::string path_;
  int fd_ = -1;
  std::int64_t file_size_ = 0;
  bool direct_ = false;
  std::string fallback_reason_;
  std::unique_ptr<Engine> engine_;
};

// Whether io_uring can run in this process (compiled in, and the kernel lets us set up a ring).
bool io_uring_available(std::string* why_not = nullptr);

// Drops the file's pages from the OS page cache (posix_fadvise DONTNEED), so the next buffered or mapped
// read comes from the disk: how a benchmark starts from a cold page cache. Dirty pages are written first.
void drop_page_cache(const std::string& path);

}  // namespace qk::io
