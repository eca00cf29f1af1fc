// What a .npy holds (dtype, shape, byte order, memory order) without reading its data: for choosing how to
// process a file (e.g. a spec that depends on the rank) before the one pass that reads it.
#pragma once

#include <string>

#include "quantkit/io/npy.hpp"

namespace qk {

// The parsed and validated header of a .npy; the data is memory-mapped, never read. Errors name the file.
// ARCHIVE.npz:KEY (files/tensor_input.hpp) gives that member's header (the member is read: zip members are
// not mapped).
io::NpyHeader read_npy_header(const std::string& path);

}  // namespace qk
