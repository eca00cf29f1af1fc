// .npy writing: whole files in memory, 0-d unicode strings, and atomic files on disk.
#include <algorithm>
#include <cstring>

#include "npy_internal.hpp"
#include "quantkit/io/atomic_file.hpp"

namespace qk::io {

using detail::check_data_size;

std::vector<std::byte> encode_npy(DType dtype, const Shape& shape, std::span<const std::byte> data) {
  check_data_size(dtype, shape, data.size(), "encode_npy");
  std::vector<std::byte> out = encode_npy_header(dtype, shape);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::vector<std::byte> encode_npy_string(const std::string& utf8) {
  const std::u32string text = detail::decode_utf8(utf8);
  // np.array("") is '<U1' holding one NUL: numpy never writes a zero-width string dtype.
  const std::size_t chars = std::max<std::size_t>(text.size(), 1);
  std::vector<std::byte> out = detail::encode_header_for_descr("<U" + std::to_string(chars), Shape{});
  const std::size_t data_at = out.size();
  out.resize(data_at + 4 * chars, std::byte{0});
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto cp = static_cast<std::uint32_t>(text[i]);
    std::memcpy(out.data() + data_at + 4 * i, &cp, 4);
  }
  return out;
}

void write_npy(const std::string& path, DType dtype, const Shape& shape, std::span<const std::byte> data) {
  check_data_size(dtype, shape, data.size(), path);
  const std::vector<std::byte> header = encode_npy_header(dtype, shape);
  AtomicFile file(path);
  file.write(header);
  file.write(data);
  file.commit();
}

}  // namespace qk::io
