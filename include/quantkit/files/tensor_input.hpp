// One tensor named on a command line or by a caller: FILE.npy, or ARCHIVE.npz:KEY for one member of an
// .npz (a checkpoint saved with numpy.savez), as `qtool quantize`, `fake-quant` and `calibrate` take them.
#pragma once

#include <optional>
#include <string>

#include "quantkit/io/npy.hpp"

namespace qk {

struct NpzMemberName {
  std::string archive;
  std::string key;
};

// ARCHIVE.npz:KEY split at the last ':' after ".npz"; nullopt for anything else.
std::optional<NpzMemberName> parse_npz_member(const std::string& input);

// The file that holds the tensor (the archive for ARCHIVE.npz:KEY): what an output must not overwrite.
std::string tensor_input_path(const std::string& input);

// Reads the tensor: a .npy memory-mapped as io::read_npy does, a member of an .npz into memory (its
// messages name ARCHIVE.npz:KEY).
io::NpyArray read_tensor_input(const std::string& input);

}  // namespace qk
