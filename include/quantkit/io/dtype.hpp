// The NumPy dtypes quantkit reads and writes, and their .npy descriptors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "quantkit/core/half.hpp"

namespace qk::io {

// Named for what the element is (numpy's dtype names), not for the descriptor's byte count: kFloat32 is
// '<f4', kInt32 is '<i4'. kUnicode is numpy's fixed-width unicode string ('<U<n>', UTF-32): only used for the 0-d metadata
// string of quantized files; its item size lives in NpyHeader::item_size.
enum class DType {
  kFloat16,
  kFloat32,
  kFloat64,
  kInt8,
  kUint8,
  kInt16,
  kUint16,
  kInt32,
  kUint32,
  kInt64,
  kUint64,
  kBool,
  kUnicode
};

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
    return DType::kFloat16;
  else if constexpr (std::is_same_v<T, float>)
    return DType::kFloat32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::kFloat64;
  else if constexpr (std::is_same_v<T, std::int8_t>)
    return DType::kInt8;
  else if constexpr (std::is_same_v<T, std::uint8_t>)
    return DType::kUint8;
  else if constexpr (std::is_same_v<T, std::int16_t>)
    return DType::kInt16;
  else if constexpr (std::is_same_v<T, std::uint16_t>)
    return DType::kUint16;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return DType::kInt32;
  else if constexpr (std::is_same_v<T, std::uint32_t>)
    return DType::kUint32;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return DType::kInt64;
  else if constexpr (std::is_same_v<T, std::uint64_t>)
    return DType::kUint64;
  else if constexpr (std::is_same_v<T, bool>)
    return DType::kBool;
  else
    static_assert(sizeof(T) == 0, "no numpy dtype for this type");
}

}  // namespace qk::io
