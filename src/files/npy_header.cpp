// .npy headers without the data.
#include "quantkit/files/npy_header.hpp"

namespace qk {

io::NpyHeader read_npy_header(const std::string& path) {
  // A threshold of 0 maps every non-empty file: only the header's pages are touched.
  return io::read_npy(path, /*mmap_threshold=*/0).header();
}

}  // namespace qk
