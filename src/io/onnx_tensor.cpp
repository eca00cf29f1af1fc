// Tensor contents of an ONNX model: the data type table, raw/typed/external data, and tensor builders.
#include <sys/stat.h>

#include <bit>
#include <cstring>
#include <fstream>
#include <limits>

#include "onnx_model.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"

namespace qk::onnxfile {

namespace {

struct TypeInfo {
  std::int32_t type;
  const char* name;
  int bits;  // per element in raw_data; 0: no fixed size (string)
};

// TensorProto.DataType (onnx.proto). 4-bit types pack two elements to a byte, the first in the low nibble.
constexpr TypeInfo kTypes[] = {
    {kFloat, "float32", 32},
    {kUint8, "uint8", 8},
    {kInt8, "int8", 8},
    {kUint16, "uint16", 16},
    {kInt16, "int16", 16},
    {kInt32, "int32", 32},
    {kInt64, "int64", 64},
    {kString, "string", 0},
    {kBool, "bool", 8},
    {kFloat16, "float16", 16},
    {kDouble, "float64", 64},
    {kUint32, "uint32", 32},
    {kUint64, "uint64", 64},
    {kComplex64, "complex64", 64},
    {kComplex128, "complex128", 128},
    {kBfloat16, "bfloat16", 16},
    {kFloat8E4M3FN, "float8e4m3fn", 8},
    {kFloat8E4M3FNUZ, "float8e4m3fnuz", 8},
    {kFloat8E5M2, "float8e5m2", 8},
    {kFloat8E5M2FNUZ, "float8e5m2fnuz", 8},
    {kUint4, "uint4", 4},
    {kInt4, "int4", 4},
};

const TypeInfo* find_type(std::int32_t t) {
  for (const auto& info : kTypes)
    if (info.type == t) return &info;
  return nullptr;
}

std::string external_value(const onnx::TensorProto& t, const std::string& key) {
  for (const auto& kv : t.external_data())
    if (kv.key() == key) return kv.value();
  return "";
}

std::uint64_t parse_u64(const std::string& s, const std::string& what) {
  if (s.empty()) return 0;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9' || v > (std::numeric_limits<std::uint64_t>::max() - 9) / 10)
      throw Error(what + " is not a byte count: '" + s + "'");
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// Typed-field element count and how to re-encode it as raw little-endian bytes.
template <class Field, class Store>
std::string encode_field(const Field& field, int bytes_per) {
  std::string out(static_cast<std::size_t>(field.size()) * static_cast<std::size_t>(bytes_per), '\0');
  for (int i = 0; i < field.size(); ++i) {
    const Store v = static_cast<Store>(field.Get(i));
    std::memcpy(out.data() + static_cast<std::size_t>(i) * static_cast<std::size_t>(bytes_per), &v,
                static_cast<std::size_t>(bytes_per));
  }
  return out;
}

}  // namespace

std::string type_name(std::int32_t data_type) {
  const TypeInfo* info = find_type(data_type);
  return info ? info->name : "type " + std::to_string(data_type);
}
bool is_known_type(std::int32_t data_type) { return find_type(data_type) != nullptr; }
bool is_float_type(std::int32_t t) { return t == kFloat || t == kFloat16 || t == kDouble || t == kBfloat16; }

std::uint64_t raw_bytes(std::int32_t data_type, std::int64_t n) {
  const TypeInfo* info = find_type(data_type);
  if (!info || info->bits == 0) throw Error("no fixed element size for " + type_name(data_type));
  const auto count = static_cast<std::uint64_t>(n);
  if (info->bits == 4) return (count + 1) / 2;
  const auto bytes = static_cast<std::uint64_t>(info->bits / 8);
  if (count > std::numeric_limits<std::uint64_t>::max() / bytes) throw Error("tensor size overflows");
  return count * bytes;
}

std::vector<std::int64_t> dims(const onnx::TensorProto& t) { return {t.dims().begin(), t.dims().end()}; }

std::int64_t numel(const onnx::TensorProto& t) {
  std::int64_t n = 1;
  for (std::int64_t d : t.dims()) {
    if (d < 0) throw Error("tensor '" + t.name() + "' has a negative dimension");
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / 4 / d)
      throw Error("tensor '" + t.name() + "' is too large (its dimensions overflow)");
    n *= d;
  }
  return n;
}

bool is_external(const onnx::TensorProto& t) {
  return t.has_data_location() && t.data_location() == onnx::TensorProto::EXTERNAL;
}

// The external file's path, checked to stay inside the model's folder (as ONNX Runtime requires), and the
// byte range, checked against the file.
struct ExternalRange {
  std::string file;
  std::uint64_t offset = 0, length = 0;
};
static ExternalRange external_range(const onnx::TensorProto& t, const std::string& dir) {
  const std::string what = "tensor '" + t.name() + "'";
  const std::string location = external_value(t, "location");
  if (location.empty()) throw Error(what + " has external data without a location");
  if (location.front() == '/' || location.find("..") != std::string::npos)
    throw Error(what + ": external data location '" + location + "' is outside the model's folder");
  ExternalRange r;
  r.file = dir.empty() ? location : dir + "/" + location;
  struct stat st {};
  if (::stat(r.file.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    throw Error(what + ": external data file '" + location + "' is missing");
  r.offset = parse_u64(external_value(t, "offset"), what + "'s external offset");
  const std::uint64_t expected = raw_bytes(t.data_type(), numel(t));
  const std::string length = external_value(t, "length");
  r.length = length.empty() ? expected : parse_u64(length, what + "'s external length");
  if (r.length != expected)
    throw Error(what + ": external data length " + std::to_string(r.length) + " does not match its shape (" +
                std::to_string(expected) + " bytes)");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (r.offset > size || r.length > size - r.offset)
    throw Error(what + ": external data [" + std::to_string(r.offset) + ", +" + std::to_string(r.length) +
                ") runs past the end of '" + location + "' (" + std::to_string(size) + " bytes)");
  return r;
}

void check_tensor_data(const onnx::TensorProto& t, const std::string& dir) {
  const std::string what = "tensor '" + t.name() + "'";
  if (!is_known_type(t.data_type()))
    throw Error(what + " has an unknown data type (" + std::to_string(t.data_type()) + ")");
  const std::int64_t n = numel(t);
  if (t.data_type() == kString) {
    if (t.string_data_size() != n)
      throw Error(what + " holds " + std::to_string(t.string_data_size()) + " strings for " +
                  std::to_string(n) + " elements");
    return;
  }
  if (is_external(t)) {
    external_range(t, dir);
    return;
  }
  const std::uint64_t expected = raw_bytes(t.data_type(), n);
  if (t.has_raw_data()) {
    if (t.raw_data().size() != expected)
      throw Error(what + " has " + std::to_string(t.raw_data().size()) +
                  " bytes of raw_data, but its shape " + "and type need " + std::to_string(expected));
    return;
  }
  std::int64_t count = 0;
  switch (t.data_type()) {
    case kFloat:
      count = t.float_data_size();
      break;
    case kComplex64:
      count = t.float_data_size() % 2 ? -1 : t.float_data_size() / 2;
      break;
    case kDouble:
      count = t.double_data_size();
      break;
    case kComplex128:
      count = t.double_data_size() % 2 ? -1 : t.double_data_size() / 2;
      break;
    case kInt64:
      count = t.int64_data_size();
      break;
    case kUint32:
    case kUint64:
      count = t.uint64_data_size();
      break;
    case kUint4:
    case kInt4:
      count = std::int64_t{t.int32_data_size()} * 2;
      break;
    default:
      count = t.int32_data_size();
      break;
  }
  const bool packed4 = t.data_type() == kUint4 || t.data_type() == kInt4;
  if (packed4 ? (count != n && count != n + 1) : count != n)
    throw Error(what + " holds " + std::to_string(count) + " values for its shape's " + std::to_string(n));
}

std::string read_raw(const onnx::TensorProto& t, const std::string& dir) {
  if (is_external(t)) {
    const ExternalRange r = external_range(t, dir);
    std::string bytes(r.length, '\0');
    std::ifstream in(r.file, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(r.offset));
    in.read(bytes.data(), static_cast<std::streamsize>(r.length));
    if (!in) throw Error("tensor '" + t.name() + "': cannot read its external data");
    return bytes;
  }
  if (t.has_raw_data()) return t.raw_data();
  switch (t.data_type()) {
    case kFloat:
    case kComplex64:
      return encode_field<decltype(t.float_data()), float>(t.float_data(), 4);
    case kDouble:
    case kComplex128:
      return encode_field<decltype(t.double_data()), double>(t.double_data(), 8);
    case kInt64:
      return encode_field<decltype(t.int64_data()), std::int64_t>(t.int64_data(), 8);
    case kUint32:
      return encode_field<decltype(t.uint64_data()), std::uint32_t>(t.uint64_data(), 4);
    case kUint64:
      return encode_field<decltype(t.uint64_data()), std::uint64_t>(t.uint64_data(), 8);
    case kInt32:
      return encode_field<decltype(t.int32_data()), std::int32_t>(t.int32_data(), 4);
    case kInt16:
    case kUint16:
    case kFloat16:
    case kBfloat16:
      return encode_field<decltype(t.int32_data()), std::uint16_t>(t.int32_data(), 2);
    case kInt8:
    case kUint8:
    case kBool:
    case kFloat8E4M3FN:
    case kFloat8E4M3FNUZ:
    case kFloat8E5M2:
    case kFloat8E5M2FNUZ:
    case kUint4:
    case kInt4:
      return encode_field<decltype(t.int32_data()), std::uint8_t>(t.int32_data(), 1);
    default:
      throw Error("tensor '" + t.name() + "': no raw form for " + type_name(t.data_type()));
  }
}

std::vector<float> read_floats(const onnx::TensorProto& t, const std::string& dir) {
  const std::int64_t n = numel(t);
  const auto count = static_cast<std::size_t>(n);
  std::vector<float> out(count);
  if (t.data_type() == kFloat && !t.has_raw_data() && !is_external(t)) {
    for (std::size_t i = 0; i < count; ++i) out[i] = t.float_data(static_cast<int>(i));
    return out;
  }
  const std::string raw = read_raw(t, dir);
  if (raw.size() != raw_bytes(t.data_type(), n)) throw Error("tensor '" + t.name() + "': data size mismatch");
  const char* p = raw.data();
  for (std::size_t i = 0; i < count; ++i) {
    switch (t.data_type()) {
      case kFloat:
        std::memcpy(&out[i], p + 4 * i, 4);
        break;
      case kDouble: {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        out[i] = static_cast<float>(d);
        break;
      }
      case kFloat16:
      case kBfloat16: {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = t.data_type() == kFloat16 ? half_bits_to_float(h) : bfloat16_bits_to_float(h);
        break;
      }
      default:
        throw Error("tensor '" + t.name() + "' is " + type_name(t.data_type()) + ", not a float tensor");
    }
  }
  return out;
}

std::vector<std::int64_t> read_ints(const onnx::TensorProto& t, const std::string& dir) {
  const std::string raw = read_raw(t, dir);
  const std::int64_t n = numel(t);
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < out.size(); ++i) {
    switch (t.data_type()) {
      case kInt64:
        std::memcpy(&out[i], raw.data() + 8 * i, 8);
        break;
      case kInt32: {
        std::int32_t v;
        std::memcpy(&v, raw.data() + 4 * i, 4);
        out[i] = v;
        break;
      }
      default:
        throw Error("tensor '" + t.name() + "' is " + type_name(t.data_type()) + ", not int32/int64");
    }
  }
  return out;
}

onnx::TensorProto make_tensor(const std::string& name, std::int32_t data_type,
                              const std::vector<std::int64_t>& shape, std::string raw) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(data_type);
  for (std::int64_t d : shape) t.add_dims(d);
  t.set_raw_data(std::move(raw));
  return t;
}

onnx::TensorProto make_int64_tensor(const std::string& name, const std::vector<std::int64_t>& values,
                                    bool scalar) {
  std::string raw(values.size() * 8, '\0');
  if (!values.empty()) std::memcpy(raw.data(), values.data(), raw.size());
  return make_tensor(name, kInt64,
                     scalar ? std::vector<std::int64_t>{}
                            : std::vector<std::int64_t>{static_cast<std::int64_t>(values.size())},
                     std::move(raw));
}

}  // namespace qk::onnxfile
