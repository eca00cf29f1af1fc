// DType names, sizes and .npy descriptors: the one table every reader and writer of dtypes uses.
#include "quantkit/io/dtype.hpp"

#include <array>
#include <string_view>

#include "quantkit/core/error.hpp"

namespace qk::io {

namespace {

struct DTypeInfo {
  DType dtype;
  std::size_t size;
  const char* name;   // numpy's dtype.name
  const char* descr;  // what numpy writes in a .npy header for this dtype on a little-endian machine
};

constexpr std::array<DTypeInfo, 12> kInfo = {{
    {DType::kF2, 2, "float16", "<f2"},
    {DType::kF4, 4, "float32", "<f4"},
    {DType::kF8, 8, "float64", "<f8"},
    {DType::kI1, 1, "int8", "|i1"},
    {DType::kU1, 1, "uint8", "|u1"},
    {DType::kI2, 2, "int16", "<i2"},
    {DType::kU2, 2, "uint16", "<u2"},
    {DType::kI4, 4, "int32", "<i4"},
    {DType::kU4, 4, "uint32", "<u4"},
    {DType::kI8, 8, "int64", "<i8"},
    {DType::kU8, 8, "uint64", "<u8"},
    {DType::kB1, 1, "bool", "|b1"},
}};

const DTypeInfo* find_info(DType d) {
  for (const DTypeInfo& info : kInfo) {
    if (info.dtype == d) return &info;
  }
  return nullptr;
}

std::string known_names() {
  std::string names;
  for (const DTypeInfo& info : kInfo) {
    if (!names.empty()) names += ", ";
    names += info.name;
  }
  return names;
}

}  // namespace

std::size_t dtype_size(DType d) {
  if (const DTypeInfo* info = find_info(d)) return info->size;
  throw Error("dtype_size: a unicode string dtype has no fixed element size");
}

const char* dtype_name(DType d) {
  if (const DTypeInfo* info = find_info(d)) return info->name;
  return "unicode";
}

DType dtype_from_name(const std::string& name) {
  std::string_view text = name;
  // '>' is refused rather than ignored: quantkit writes little-endian only, so a caller asking for a
  // big-endian dtype would silently get something else.
  if (!text.empty() && (text.front() == '<' || text.front() == '|' || text.front() == '='))
    text.remove_prefix(1);
  if (text == "?" || text == "bool_") return DType::kB1;
  if (text == "half") return DType::kF2;
  if (text == "single") return DType::kF4;
  if (text == "double") return DType::kF8;
  for (const DTypeInfo& info : kInfo) {
    if (text == info.name || text == std::string_view(info.descr).substr(1)) return info.dtype;
  }
  throw Error("unknown dtype '" + name + "' (expected one of " + known_names() + ")");
}

std::string dtype_descr(DType d) {
  if (const DTypeInfo* info = find_info(d)) return info->descr;
  throw Error("dtype_descr: a unicode string dtype's descriptor depends on its length");
}

bool dtype_is_float(DType d) { return d == DType::kF2 || d == DType::kF4 || d == DType::kF8; }

}  // namespace qk::io
