// .npy headers without the data.
#include "quantkit/files/npy_header.hpp"

#include "quantkit/files/tensor_input.hpp"

namespace qk {

io::NpyHeader read_npy_header(const std::string& path) {
  if (parse_npz_member(path)) return read_tensor_input(path).header();
  // A threshold of 0 maps every non-empty file: only the header's pages are touched.
  return io::read_npy(path, /*mmap_threshold=*/0).header();
}

}  // namespace qk
