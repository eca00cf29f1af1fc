// Pieces shared by the .npy reader, converter and writer (private to src/io).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include <sys/mman.h>

#include "quantkit/core/half.hpp"
#include "quantkit/io/npy.hpp"

namespace qk::io {

// Little-endian data is used in place and byte-swapped from '>' only; a big-endian host would need the
// opposite rule everywhere.
static_assert(std::endian::native == std::endian::little,
              "quantkit's .npy code assumes a little-endian host");

struct NpyArray::Storage {
  std::vector<std::byte> bytes;  // the whole .npy when it was read or handed over in memory
  void* map = nullptr;           // the whole file when memory-mapped
  std::size_t map_size = 0;
  std::shared_ptr<const void> owner;  // borrowed bytes: whoever holds them (borrow_npy)
  bool owner_mapped = false;          // ... and whether they are a read-only file mapping

  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() {
    if (map != nullptr) ::munmap(map, map_size);
  }
};

namespace detail {

inline constexpr char kNpyMagic[] = "\x93NUMPY";
inline constexpr std::size_t kNpyMagicSize = 6;

template <class T>
struct BitsOf {
  using type = std::make_unsigned_t<T>;
};
template <>
struct BitsOf<bool> {
  using type = std::uint8_t;
};
template <>
struct BitsOf<half> {
  using type = std::uint16_t;
};
template <>
struct BitsOf<float> {
  using type = std::uint32_t;
};
template <>
struct BitsOf<double> {
  using type = std::uint64_t;
};

template <class U>
inline U byte_swap(U v) {
  if constexpr (sizeof(U) == 1)
    return v;
  else if constexpr (sizeof(U) == 2)
    return static_cast<U>(__builtin_bswap16(v));
  else if constexpr (sizeof(U) == 4)
    return static_cast<U>(__builtin_bswap32(v));
  else
    return static_cast<U>(__builtin_bswap64(v));
}

// Reads element i of a stored array; memcpy because a file's data need not be aligned for Src.
template <class Src>
inline Src load(const std::byte* base, std::size_t i, bool swap) {
  using U = typename BitsOf<Src>::type;
  U bits;
  std::memcpy(&bits, base + i * sizeof(U), sizeof(U));
  if (swap) bits = byte_swap(bits);
  if constexpr (std::is_same_v<Src, bool>)
    return bits != 0;  // a stored 2 is true, not undefined behaviour
  else if constexpr (std::is_same_v<Src, half>)
    return half::from_bits(bits);
  else
    return std::bit_cast<Src>(bits);
}

// The header bytes for any descriptor (encode_npy_header's, and '<U<n>' strings').
std::vector<std::byte> encode_header_for_descr(const std::string& descr, const Shape& shape);
// Throws (naming who) unless got is the byte count of dtype and shape.
void check_data_size(DType dtype, const Shape& shape, std::size_t got, const std::string& who);

// UTF-8 <-> code points (src/io/utf8.cpp); decode throws on malformed input.
std::u32string decode_utf8(const std::string& text);
void append_utf8(std::string& out, char32_t cp);

}  // namespace detail
}  // namespace qk::io
