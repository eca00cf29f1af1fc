// FILE.npy or ARCHIVE.npz:KEY (files/tensor_input.hpp).
#include "quantkit/files/tensor_input.hpp"

#include "quantkit/io/npz.hpp"

namespace qk {

std::optional<NpzMemberName> parse_npz_member(const std::string& input) {
  const auto colon = input.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  const std::string archive = input.substr(0, colon);
  if (archive.size() < 4 || archive.compare(archive.size() - 4, 4, ".npz") != 0) return std::nullopt;
  return NpzMemberName{archive, input.substr(colon + 1)};
}

std::string tensor_input_path(const std::string& input) {
  const auto member = parse_npz_member(input);
  return member ? member->archive : input;
}

io::NpyArray read_tensor_input(const std::string& input) {
  if (const auto member = parse_npz_member(input)) return io::read_npz_member(member->archive, member->key);
  return io::read_npy(input);
}

}  // namespace qk
