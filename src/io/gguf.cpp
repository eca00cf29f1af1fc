// GGUF: ggml's type table, the validating reader and the streaming writer (see io/gguf.hpp).
#include "quantkit/io/gguf.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <type_traits>

#include "gguf_internal.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/io/atomic_file.hpp"

namespace qk::io {

using namespace gguf_detail;

namespace {

// ggml.c's type_traits (block size, sizeof(block_*) from ggml-common.h) for every type a GGUF file may
// hold; the types removed from GGUF (4, 5, 31-33, 36-38) are absent, so files using them are refused.
constexpr std::array<GgmlTypeInfo, 40> kGgmlTypes{{
    {0, "f32", 1, 4},         {1, "f16", 1, 2},         {2, "q4_0", 32, 18},      {3, "q4_1", 32, 20},
    {6, "q5_0", 32, 22},      {7, "q5_1", 32, 24},      {8, "q8_0", 32, 34},      {9, "q8_1", 32, 36},
    {10, "q2_K", 256, 84},    {11, "q3_K", 256, 110},   {12, "q4_K", 256, 144},   {13, "q5_K", 256, 176},
    {14, "q6_K", 256, 210},   {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66}, {17, "iq2_xs", 256, 74},
    {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},   {20, "iq4_nl", 32, 18},   {21, "iq3_s", 256, 110},
    {22, "iq2_s", 256, 82},   {23, "iq4_xs", 256, 136}, {24, "i8", 1, 1},         {25, "i16", 1, 2},
    {26, "i32", 1, 4},        {27, "i64", 1, 8},        {28, "f64", 1, 8},        {29, "iq1_m", 256, 56},
    {30, "bf16", 1, 2},       {34, "tq1_0", 256, 54},   {35, "tq2_0", 256, 66},   {39, "mxfp4", 32, 17},
    {40, "nvfp4", 64, 36},    {41, "q1_0", 128, 18},    {42, "q2_0", 64, 18},
}};

// Bounds-checked little-endian reads over the file; every failure says what was being read and where.
class Reader {
 public:
  Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}
  std::uint64_t pos() const { return pos_; }
  std::uint64_t remaining() const { return bytes_.size() - pos_; }
  void need(std::uint64_t n, const std::string& what) const {
    if (n > remaining())
      throw Error(what + " at byte " + std::to_string(pos_) + " runs past the end of the file (" +
                  std::to_string(bytes_.size()) + " bytes; truncated?)");
  }
  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::span<const std::byte> take(std::uint64_t n, const std::string& what) {
    need(n, what);
    const auto out = bytes_.subspan(static_cast<std::size_t>(pos_), static_cast<std::size_t>(n));
    pos_ += n;
    return out;
  }
  std::string string(const std::string& what) {
    const auto n = read<std::uint64_t>(what + "'s length");
    if (n > kMaxString)
      throw Error(what + " of " + std::to_string(n) + " bytes exceeds ggml's limit of " +
                  std::to_string(kMaxString));
    const auto b = take(n, what);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }

 private:
  std::span<const std::byte> bytes_;
  std::uint64_t pos_ = 0;
};

GgufValue read_value(Reader& r, GgufType type, const std::string& what, int depth);

GgufValue read_array(Reader& r, const std::string& what, int depth) {
  if (depth > kMaxNesting) throw Error(what + ": arrays nested deeper than " + std::to_string(kMaxNesting));
  GgufValue v;
  v.type = GgufType::kArray;
  const auto element = r.read<std::uint32_t>(what + "'s element type");
  if (!known_type(element)) throw Error(what + ": unknown array element type " + std::to_string(element));
  v.element = static_cast<GgufType>(element);
  const auto n = r.read<std::uint64_t>(what + "'s element count");
  if (n > kMaxArray)
    throw Error(what + ": array of " + std::to_string(n) + " elements exceeds ggml's limit of " +
                std::to_string(kMaxArray));
  if (const std::size_t size = scalar_size(v.element); size > 0) {
    const auto b = r.take(n * size, what);
    v.raw.assign(b.begin(), b.end());
    return v;
  }
  // Strings and arrays: each takes at least 8 (12) bytes, so a count the file cannot hold fails here,
  // before anything is allocated for it.
  r.need(n * 8, what + "'s " + std::to_string(n) + " elements");
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::string item = what + "[" + std::to_string(i) + "]";
    if (v.element == GgufType::kString)
      v.strings.push_back(r.string(item));
    else
      v.arrays.push_back(read_array(r, item, depth + 1));
  }
  return v;
}

GgufValue read_value(Reader& r, GgufType type, const std::string& what, int depth) {
  if (type == GgufType::kArray) return read_array(r, what, depth);
  GgufValue v;
  v.type = type;
  if (type == GgufType::kString) {
    v.strings.push_back(r.string(what));
  } else {
    const auto b = r.take(scalar_size(type), what);
    v.raw.assign(b.begin(), b.end());
  }
  return v;
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(std::uint32_t id) {
  for (const GgmlTypeInfo& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

const GgmlTypeInfo* ggml_type_by_name(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const GgmlTypeInfo& t : kGgmlTypes) {
    std::string n = t.name;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    if (n == lower) return &t;
  }
  return nullptr;
}

const char* gguf_type_name(GgufType t) {
  static constexpr const char* kNames[] = {"u8",   "i8",  "u16", "i16", "u32", "i32", "f32",
                                           "bool", "str", "arr", "u64", "i64", "f64"};
  const auto i = static_cast<std::uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

std::uint64_t GgufValue::count() const {
  if (type != GgufType::kArray) return 1;
  if (element == GgufType::kString) return strings.size();
  if (element == GgufType::kArray) return arrays.size();
  return raw.size() / std::max<std::size_t>(1, scalar_size(element));
}

std::string GgufValue::as_string(const std::string& key) const {
  if (type != GgufType::kString)
    throw Error("gguf: key '" + key + "' is " + gguf_type_name(type) + ", not a string");
  return strings.at(0);
}

std::uint64_t GgufValue::as_uint(const std::string& key) const {
  const auto get = [&]<class T>(T*) {
    T v;
    std::memcpy(&v, raw.data(), sizeof(T));
    if constexpr (std::is_signed_v<T>)
      if (v < 0) throw Error("gguf: key '" + key + "' is negative");
    return static_cast<std::uint64_t>(v);
  };
  switch (type) {
    case GgufType::kU8:
      return get(static_cast<std::uint8_t*>(nullptr));
    case GgufType::kI8:
      return get(static_cast<std::int8_t*>(nullptr));
    case GgufType::kU16:
      return get(static_cast<std::uint16_t*>(nullptr));
    case GgufType::kI16:
      return get(static_cast<std::int16_t*>(nullptr));
    case GgufType::kU32:
      return get(static_cast<std::uint32_t*>(nullptr));
    case GgufType::kI32:
      return get(static_cast<std::int32_t*>(nullptr));
    case GgufType::kU64:
      return get(static_cast<std::uint64_t*>(nullptr));
    case GgufType::kI64:
      return get(static_cast<std::int64_t*>(nullptr));
    default:
      throw Error("gguf: key '" + key + "' is " + gguf_type_name(type) + ", not an integer");
  }
}

std::string GgufValue::summary() const {
  if (type == GgufType::kArray) {
    std::string out = "[";
    out += std::to_string(count());
    out += " x ";
    out += gguf_type_name(element);
    return out + "]";
  }
  if (type == GgufType::kString) {
    const std::string& s = strings.at(0);
    std::string out = "\"";
    out.append(s, 0, std::min<std::size_t>(s.size(), 60));
    if (s.size() > 60) out += "...";
    return out + "\"";
  }
  if (type == GgufType::kBool) return raw.at(0) != std::byte{0} ? "true" : "false";
  if (type == GgufType::kF32 || type == GgufType::kF64) {
    double d;
    if (type == GgufType::kF32) {
      float f;
      std::memcpy(&f, raw.data(), 4);
      d = f;
    } else {
      std::memcpy(&d, raw.data(), 8);
    }
    char text[32];
    std::snprintf(text, sizeof(text), "%g", d);
    return text;
  }
  if (type == GgufType::kI8 || type == GgufType::kI16 || type == GgufType::kI32 || type == GgufType::kI64) {
    std::int64_t v = 0;
    const std::size_t n = raw.size();
    std::memcpy(&v, raw.data(), n);
    if (n < 8 && (static_cast<std::uint64_t>(v) >> (8 * n - 1)) & 1) v -= std::int64_t{1} << (8 * n);  // sign
    return std::to_string(v);
  }
  return std::to_string(as_uint(""));
}

GgufValue GgufValue::of_string(std::string s) {
  GgufValue v;
  v.type = GgufType::kString;
  v.strings.push_back(std::move(s));
  return v;
}

GgufValue GgufValue::of_u32(std::uint32_t x) {
  GgufValue v;
  v.type = GgufType::kU32;
  write_le(v.raw, x);
  return v;
}

GgufValue GgufValue::of_i32(std::int32_t x) {
  GgufValue v;
  v.type = GgufType::kI32;
  write_le(v.raw, x);
  return v;
}

Shape GgufTensor::shape() const { return Shape(ne.rbegin(), ne.rend()); }

std::int64_t GgufTensor::numel() const {
  std::int64_t n = 1;
  for (const std::int64_t d : ne) n *= d;
  return n;
}

std::uint64_t ggml_tensor_bytes(std::uint32_t type, const std::vector<std::int64_t>& ne) {
  const GgmlTypeInfo* info = ggml_type_info(type);
  if (!info) throw Error("unknown ggml type " + std::to_string(type));
  std::uint64_t numel = 1;
  for (const std::int64_t d : ne) {
    if (d < 0) throw Error("negative dimension");
    if (d != 0 && numel > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) /
                              static_cast<std::uint64_t>(d))
      throw Error("element count overflows");
    numel *= static_cast<std::uint64_t>(d);
  }
  if (!ne.empty() && ne[0] % info->block_size != 0)
    throw Error(std::string("type ") + info->name + " needs rows of a multiple of " +
                std::to_string(info->block_size) + " weights, not " + std::to_string(ne[0]));
  const std::uint64_t blocks = numel / static_cast<std::uint64_t>(info->block_size);
  if (blocks > std::numeric_limits<std::uint64_t>::max() / static_cast<std::uint64_t>(info->block_bytes))
    throw Error("byte count overflows");
  return blocks * static_cast<std::uint64_t>(info->block_bytes);
}

GgufFile GgufFile::open(const std::string& path) {
  std::shared_ptr<const MappedFile> file = MappedFile::open(path);
  GgufFile f = parse(file->bytes(), path);
  f.file_ = std::move(file);
  return f;
}

GgufFile GgufFile::parse(std::span<const std::byte> bytes, const std::string& name) {
  GgufFile f;
  f.name_ = name;
  Reader r(bytes);
  try {
    const auto magic = r.take(4, "the magic");
    if (std::memcmp(magic.data(), "GGUF", 4) != 0) throw Error("not a GGUF file (the magic is not 'GGUF')");
    f.version_ = r.read<std::uint32_t>("the version");
    if (f.version_ != 0 && (f.version_ & 0xFFFF) == 0)
      throw Error("version " + std::to_string(f.version_) + " is byte-swapped: a big-endian file");
    if (f.version_ < 2 || f.version_ > 3)
      throw Error("GGUF version " + std::to_string(f.version_) + " is not supported (2 and 3 are)");
    const auto n_tensors = r.read<std::uint64_t>("the tensor count");
    const auto n_kv = r.read<std::uint64_t>("the metadata count");
    // A metadata entry takes at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 4 + 8.
    if (n_kv > r.remaining() / 14)
      throw Error("metadata count " + std::to_string(n_kv) + " is more than the file can hold");
    if (n_tensors > r.remaining() / 25)
      throw Error("tensor count " + std::to_string(n_tensors) + " is more than the file can hold");
    std::set<std::string> keys;
    for (std::uint64_t i = 0; i < n_kv; ++i) {
      const std::string what = "metadata key " + std::to_string(i);
      std::string key = r.string(what);
      if (key.empty()) throw Error(what + " is empty");
      if (!valid_utf8(key)) throw Error(what + " is not valid UTF-8");
      if (!keys.insert(key).second) throw Error("metadata key '" + key + "' appears twice");
      const auto type = r.read<std::uint32_t>("the type of '" + key + "'");
      if (!known_type(type))
        throw Error("metadata key '" + key + "' has unknown value type " + std::to_string(type));
      GgufValue v = read_value(r, static_cast<GgufType>(type), "the value of '" + key + "'", 0);
      f.metadata_.emplace_back(std::move(key), std::move(v));
    }
    if (const GgufValue* a = f.find(kAlignmentKey)) {
      if (a->type != GgufType::kU32)
        throw Error(std::string(kAlignmentKey) + " must be u32, not " + gguf_type_name(a->type));
      f.alignment_ = a->as_uint(kAlignmentKey);
      if (f.alignment_ == 0 || (f.alignment_ & (f.alignment_ - 1)) != 0)
        throw Error(std::string(kAlignmentKey) + " " + std::to_string(f.alignment_) + " is not a power of 2");
    }
    std::set<std::string> names;
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensor t;
      t.name = r.string("the name of tensor " + std::to_string(i));
      const std::string what = "tensor '" + t.name + "'";
      if (t.name.size() >= kMaxName)
        throw Error("the name of tensor " + std::to_string(i) + " is " + std::to_string(t.name.size()) +
                    " bytes, ggml's limit is " + std::to_string(kMaxName - 1));
      if (!valid_utf8(t.name)) throw Error("the name of tensor " + std::to_string(i) + " is not valid UTF-8");
      if (!names.insert(t.name).second) throw Error(what + " appears twice");
      const auto n_dims = r.read<std::uint32_t>(what + "'s dimension count");
      if (n_dims > kMaxDims)
        throw Error(what + " has " + std::to_string(n_dims) + " dimensions, ggml's limit is " +
                    std::to_string(kMaxDims));
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        const auto n = r.read<std::int64_t>(what + "'s dimension " + std::to_string(d));
        if (n < 0) throw Error(what + " dimension " + std::to_string(d) + " is negative");
        t.ne.push_back(n);
      }
      t.type = r.read<std::uint32_t>(what + "'s type");
      if (!ggml_type_info(t.type)) throw Error(what + " has unknown ggml type " + std::to_string(t.type));
      t.offset = r.read<std::uint64_t>(what + "'s offset");
      try {
        (void)ggml_tensor_bytes(t.type, t.ne);
      } catch (const Error& e) {
        throw Error(what + ": " + e.what());
      }
      f.tensors_.push_back(std::move(t));
    }
    f.data_offset_ = f.tensors_.empty() ? r.pos() : pad(r.pos(), f.alignment_);
    if (f.data_offset_ > bytes.size())
      throw Error("the data section would start at byte " + std::to_string(f.data_offset_) +
                  ", past the end");
    // ggml's rule: each tensor starts where the previous one's data, padded to the alignment, ends.
    const std::uint64_t data_bytes = bytes.size() - f.data_offset_;
    std::uint64_t expected = 0;
    for (GgufTensor& t : f.tensors_) {
      const std::uint64_t size = ggml_tensor_bytes(t.type, t.ne);
      if (t.offset != expected)
        throw Error("tensor '" + t.name + "' has offset " + std::to_string(t.offset) + ", expected " +
                    std::to_string(expected) + " (tensors must follow each other, each padded to " +
                    std::to_string(f.alignment_) + " bytes)");
      if (size > data_bytes || t.offset > data_bytes - size)
        throw Error("tensor '" + t.name + "' (" + std::to_string(size) + " bytes at offset " +
                    std::to_string(t.offset) + ") runs past the end of the file (truncated?)");
      t.data =
          bytes.subspan(static_cast<std::size_t>(f.data_offset_ + t.offset), static_cast<std::size_t>(size));
      expected = pad(t.offset + size, f.alignment_);
    }
  } catch (const Error& e) {
    throw Error(name + ": " + e.what());
  }
  return f;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  for (const auto& [k, v] : metadata_)
    if (k == key) return &v;
  return nullptr;
}

}  // namespace qk::io
