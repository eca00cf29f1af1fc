// The NumPy dtypes quantkit reads and writes, and their .npy descriptors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "quantkit/core/half.hpp"

namespace qk::io {

// kUnicode is numpy's fixed-width unicode string ('<U<n>', UTF-32): only used for the 0-d metadata
// string of quantized files; its item size lives in NpyHeader::item_size.
enum class DType { kF2, kF4, kF8, kI1, kU1, kI2, kU2, kI4, kU4, kI8, kU8, kB1, kUnicode };

// Bytes per element; throws for kUnicode (its size is per array).
std::size_t dtype_size(DType d);
// "float32", "int8", "bool", ...: numpy's name, for messages and metadata.
const char* dtype_name(DType d);
// Parses a numpy name ("float32", "f4", "<f4") or throws qk::Error.
DType dtype_from_name(const std::string& name);
// The descriptor written in a .npy header, e.g. "<f4", "|u1", "|b1".
std::string dtype_descr(DType d);
bool dtype_is_float(DType d);

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, half>)
    return DType::kF2;
  else if constexpr (std::is_same_v<T, float>)
    return DType::kF4;
  else if constexpr (std::is_same_v<T, double>)
    return DType::kF8;
  else if constexpr (std::is_same_v<T, std::int8_t>)
    return DType::kI1;
  else if constexpr (std::is_same_v<T, std::uint8_t>)
    return DType::kU1;
  else if constexpr (std::is_same_v<T, std::int16_t>)
    return DType::kI2;
  else if constexpr (std::is_same_v<T, std::uint16_t>)
    return DType::kU2;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return DType::kI4;
  else if constexpr (std::is_same_v<T, std::uint32_t>)
    return DType::kU4;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return DType::kI8;
  else if constexpr (std::is_same_v<T, std::uint64_t>)
    return DType::kU8;
  else if constexpr (std::is_same_v<T, bool>)
    return DType::kB1;
  else
    static_assert(sizeof(T) == 0, "no numpy dtype for this type");
}

}  // namespace qk::io
