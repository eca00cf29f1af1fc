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
    {DType::kFloat16, 2, "float16", "<f2"},
    {DType::kFloat32, 4, "float32", "<f4"},
    {DType::kFloat64, 8, "float64", "<f8"},
    {DType::kInt8, 1, "int8", "|i1"},
    {DType::kUint8, 1, "uint8", "|u1"},
    {DType::kInt16, 2, "int16", "<i2"},
    {DType::kUint16, 2, "uint16", "<u2"},
    {DType::kInt32, 4, "int32", "<i4"},
    {DType::kUint32, 4, "uint32", "<u4"},
    {DType::kInt64, 8, "int64", "<i8"},
    {DType::kUint64, 8, "uint64", "<u8"},
    {DType::kBool, 1, "bool", "|b1"},
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
  if (text == "?" || text == "bool_") return DType::kBool;
  if (text == "half") return DType::kFloat16;
  if (text == "single") return DType::kFloat32;
  if (text == "double") return DType::kFloat64;
  for (const DTypeInfo& info : kInfo) {
    if (text == info.name || text == std::string_view(info.descr).substr(1)) return info.dtype;
  }
  throw Error("unknown dtype '" + name + "' (expected one of " + known_names() + ")");
}

std::string dtype_descr(DType d) {
  if (const DTypeInfo* info = find_info(d)) return info->descr;
  throw Error("dtype_descr: a unicode string dtype's descriptor depends on its length");
}

bool dtype_is_float(DType d) { return d == DType::kFloat16 || d == DType::kFloat32 || d == DType::kFloat64; }

}  // namespace qk::io
