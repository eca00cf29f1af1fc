// Internal to src/io: what the GGUF reader (gguf.cpp) and writer (gguf_writer.cpp) share: ggml's limits,
// value sizes, padding, UTF-8 checks and the little-endian encoders of metadata values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "npy_internal.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/io/gguf.hpp"

namespace qk::io::gguf_detail {

inline constexpr std::uint64_t kMaxString = std::uint64_t{1} << 30;  // ggml's GGUF_MAX_STRING_LENGTH
inline constexpr std::uint64_t kMaxArray = std::uint64_t{1} << 30;   // ggml's GGUF_MAX_ARRAY_ELEMENTS
inline constexpr std::size_t kMaxName = 64;                          // ggml's GGML_MAX_NAME (with the NUL)
inline constexpr std::size_t kMaxDims = 4;                           // GGML_MAX_DIMS
inline constexpr int kMaxNesting = 8;                                // arrays of arrays, deeper is refused
inline constexpr const char* kAlignmentKey = "general.alignment";

inline std::size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
      return 8;
    default:
      return 0;  // string, array
  }
}

inline bool known_type(std::uint32_t t) { return t <= static_cast<std::uint32_t>(GgufType::kF64); }

inline bool valid_utf8(const std::string& s) {
  try {
    (void)detail::decode_utf8(s);
    return true;
  } catch (const Error&) {
    return false;
  }
}

inline std::uint64_t pad(std::uint64_t n, std::uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

inline void write_bytes(std::vector<std::byte>& out, const void* p, std::size_t n) {
  const std::size_t at = out.size();
  out.resize(at + n);
  if (n > 0) std::memcpy(out.data() + at, p, n);
}
template <class T>
inline void write_le(std::vector<std::byte>& out, T v) {
  write_bytes(out, &v, sizeof(T));
}
inline void write_string(std::vector<std::byte>& out, const std::string& s) {
  write_le<std::uint64_t>(out, s.size());
  write_bytes(out, s.data(), s.size());
}

inline void write_value(std::vector<std::byte>& out, const GgufValue& v) {
  if (v.type == GgufType::kArray) {
    write_le<std::uint32_t>(out, static_cast<std::uint32_t>(v.element));
    write_le<std::uint64_t>(out, v.count());
    if (v.element == GgufType::kString)
      for (const std::string& s : v.strings) write_string(out, s);
    else if (v.element == GgufType::kArray)
      for (const GgufValue& a : v.arrays) write_value(out, a);
    else
      write_bytes(out, v.raw.data(), v.raw.size());
    return;
  }
  if (v.type == GgufType::kString)
    write_string(out, v.strings.at(0));
  else
    write_bytes(out, v.raw.data(), v.raw.size());
}

// A value's shape is consistent (as the reader makes them): raw bytes a multiple of the element size, one
// string for a scalar string, and so on. The writer checks what callers built by hand.
inline void check_value(const GgufValue& v, const std::string& key) {
  const GgufType t = v.type == GgufType::kArray ? v.element : v.type;
  if (!known_type(static_cast<std::uint32_t>(t)) || (v.type != GgufType::kArray && t == GgufType::kArray))
    throw Error("gguf: key '" + key + "' has an invalid value type");
  if (v.type != GgufType::kArray && t == GgufType::kString && v.strings.size() != 1)
    throw Error("gguf: key '" + key + "': a string value holds exactly one string");
  if (const std::size_t size = scalar_size(t); size > 0) {
    if (v.raw.size() % size != 0 || (v.type != GgufType::kArray && v.raw.size() != size))
      throw Error("gguf: key '" + key + "': " + std::to_string(v.raw.size()) + " bytes for " +
                  gguf_type_name(t));
  }
  for (const GgufValue& a : v.arrays) check_value(a, key);
}

}  // namespace qk::io::gguf_detail
