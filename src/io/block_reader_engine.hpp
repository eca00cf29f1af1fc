// The two ways a BlockReader keeps many reads in flight (block_reader.hpp): an io_uring ring, or a pool of
// threads issuing blocking pread()s. Internal to src/io.
#pragma once

#include <climits>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "quantkit/io/block_reader.hpp"

namespace qk::io {

class BlockReader::Engine {
 public:
  virtual ~Engine() = default;
  virtual ReadBackend backend() const = 0;
  // Performs every request on fd (see BlockReader::read); path names the file in errors. A read stops at
  // file_size: a direct read of the last, partial block returns short, and asking again for the rest
  // from an unaligned offset would fail.
  virtual void read(int fd, std::span<const ReadRequest> requests, const std::string& path,
                    std::int64_t file_size) = 0;
};

// A ring of `depth` entries, or nullptr with *why_not set when io_uring is not compiled in or the kernel
// refuses to set one up.
std::unique_ptr<BlockReader::Engine> make_uring_engine(int depth, std::string* why_not);
std::unique_ptr<BlockReader::Engine> make_pread_engine(int threads);

// Reads one request to its end with pread(), retrying short reads; stops at the end of the file.
// Throws qk::Error naming path on an I/O error.
void pread_fully(int fd, const ReadRequest& request, const std::string& path,
                 std::int64_t file_size = INT64_MAX);

}  // namespace qk::io
