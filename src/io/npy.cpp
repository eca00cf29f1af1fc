// .npy reading (header parser, memory map, conversion to C-order native values) and writing.
// The header dict is a Python literal; it is parsed by hand here and never evaluated or unpickled.
#include "quantkit/io/npy.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>

#include "quantkit/io/atomic_file.hpp"

namespace qk::io {

// Little-endian data is used in place and byte-swapped from '>' only; a big-endian host would need the
// opposite rule everywhere.
static_assert(std::endian::native == std::endian::little,
              "quantkit's .npy code assumes a little-endian host");

struct NpyArray::Storage {
  std::vector<std::byte> bytes;  // the whole .npy when it was read or handed over in memory
  void* map = nullptr;           // the whole file when memory-mapped
  std::size_t map_size = 0;

  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() {
    if (map != nullptr) ::munmap(map, map_size);
  }
};

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;
// numpy >= 1.21 aligns the data to 64 bytes (older versions to 16); we write 64 so that any SIMD load
// of a memory-mapped file is aligned.
constexpr std::size_t kDataAlign = 64;
// numpy 2 allows 64 dimensions; more is not an array anyone wrote on purpose.
constexpr std::size_t kMaxRank = 64;

// Parser of the header dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }".
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  struct Fields {
    std::string descr;
    bool fortran_order = false;
    Shape shape;
  };

  Fields parse() {
    Fields fields;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_space();
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string("a key");
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        check_once(have_descr, key);
        if (peek() == '[') throw Error(name_ + ": unsupported dtype (structured arrays are not supported)");
        fields.descr = parse_string("the descr value");
      } else if (key == "fortran_order") {
        check_once(have_order, key);
        fields.fortran_order = parse_bool();
      } else if (key == "shape") {
        check_once(have_shape, key);
        fields.shape = parse_shape();
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    // numpy pads with spaces and ends with '\n'; anything else after the dict is not a header we know.
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the dict");
    if (!have_descr) fail("missing key 'descr'");
    if (!have_order) fail("missing key 'fortran_order'");
    if (!have_shape) fail("missing key 'shape'");
    return fields;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(name_ + ": malformed .npy header: " + what + " at offset " + std::to_string(pos_));
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  void check_once(bool& seen, const std::string& key) const {
    if (seen) fail("duplicate key '" + key + "'");
    seen = true;
  }

  std::string parse_string(const char* what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail(std::string("expected a quoted string for ") + what);
    ++pos_;
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) fail("unterminated string");
      char c = text_[pos_++];
      if (c == quote) return out;
      if (c == '\\') {  // the only escapes a descr could need are of the quote and the backslash
        if (pos_ >= text_.size()) fail("unterminated string");
        c = text_[pos_++];
      }
      out += c;
    }
  }

  bool parse_bool() {
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("fortran_order must be True or False");
  }

  // A tuple of non-negative integers: (), (3,), (2, 3) or (2, 3,). numpy rejects "(3)", an int, and so do we.
  Shape parse_shape() {
    expect('(');
    Shape shape;
    bool trailing_comma = false;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (peek() == '-') throw Error(name_ + ": negative dimension in the .npy header shape");
      shape.push_back(parse_dim());
      if (shape.size() > kMaxRank) fail("more than " + std::to_string(kMaxRank) + " dimensions");
      skip_space();
      trailing_comma = peek() == ',';
      if (trailing_comma) {
        ++pos_;
      } else if (peek() != ')') {
        fail("expected ',' or ')' in shape");
      }
    }
    ++pos_;
    if (shape.size() == 1 && !trailing_comma)
      fail("shape is not a tuple (a one-element tuple needs a comma)");
    return shape;
  }

  std::int64_t parse_dim() {
    if (peek() < '0' || peek() > '9') fail("expected a dimension");
    std::int64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      const int digit = peek() - '0';
      if (value > (std::numeric_limits<std::int64_t>::max() - digit) / 10) {
        throw Error(name_ + ": a dimension in the .npy header overflows 64 bits");
      }
      value = value * 10 + digit;
      ++pos_;
    }
    if (peek() == 'L' || peek() == 'l') ++pos_;  // Python 2 numpy wrote longs as "3L"
    return value;
  }

  std::string_view text_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

struct ParsedDescr {
  DType dtype;
  bool big_endian;
  std::size_t item_size;
};

ParsedDescr parse_descr(const std::string& descr, const std::string& name) {
  std::string_view text = descr;
  char order = '=';
  if (!text.empty() && (text[0] == '<' || text[0] == '>' || text[0] == '|' || text[0] == '=')) {
    order = text[0];
    text.remove_prefix(1);
  }
  const auto unsupported = [&]() -> Error { return Error(name + ": unsupported dtype '" + descr + "'"); };
  if (text.empty()) throw unsupported();
  const char kind = text[0];
  if (kind == 'O') throw Error(name + ": object arrays are not supported (quantkit never unpickles)");
  if (kind == '?' && text.size() == 1) return {DType::kBool, false, 1};
  const std::string_view digits = text.substr(1);
  if (digits.empty() || digits.size() > 12 ||
      digits.find_first_not_of("0123456789") != std::string_view::npos) {
    throw unsupported();
  }
  const std::uint64_t count = std::stoull(std::string(digits));
  if (kind == 'U') {
    // UTF-32 code units: 4 bytes per character; 12 digits keep 4 * count far from overflow.
    return {DType::kUnicode, order == '>', static_cast<std::size_t>(4 * count)};
  }
  for (const DType d : {DType::kFloat16, DType::kFloat32, DType::kFloat64, DType::kInt8, DType::kUint8, DType::kInt16, DType::kUint16,
                        DType::kInt32, DType::kUint32, DType::kInt64, DType::kUint64, DType::kBool}) {
    const std::string d_descr = dtype_descr(d);
    if (d_descr[1] == kind && dtype_size(d) == count) return {d, order == '>' && count > 1, count};
  }
  throw unsupported();
}

std::uint32_t read_le(std::span<const std::byte> bytes, std::size_t offset, std::size_t width) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < width; ++i)
    value |= std::to_integer<std::uint32_t>(bytes[offset + i]) << (8 * i);
  return value;
}

// ---- conversion ---------------------------------------------------------------------------------

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
U byte_swap(U v) {
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
Src load(const std::byte* base, std::size_t i, bool swap) {
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

// double -> float rounded to odd: converting that to half then rounds like a direct double -> half
// conversion (float keeps more than 11 + 2 bits), where double -> float -> half could round twice.
float round_to_odd_float(double d) {
  float f = static_cast<float>(d);
  if (std::isnan(d) || static_cast<double>(f) == d) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(f) | 1u);
}

// Float -> integer as C truncation, but defined everywhere: NaN -> 0, out of range -> the nearest limit.
template <class T>
T saturate_cast(double v) {
  if (std::isnan(v)) return 0;
  if (v < static_cast<double>(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
  if (v >= std::ldexp(1.0, std::numeric_limits<T>::digits)) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

template <class T, class Src>
T convert_value(Src v) {
  if constexpr (std::is_same_v<T, Src>) {
    return v;
  } else if constexpr (std::is_same_v<Src, half>) {
    return convert_value<T>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_same_v<Src, bool>) {
    return convert_value<T>(static_cast<std::uint8_t>(v ? 1 : 0));
  } else if constexpr (std::is_same_v<T, half>) {
    if constexpr (std::is_same_v<Src, float>)
      return half(v);
    else
      return half(round_to_odd_float(static_cast<double>(v)));  // integers above 2^53 overflow half anyway
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else if constexpr (std::is_floating_point_v<Src>) {
    return saturate_cast<T>(static_cast<double>(v));
  } else {
    return static_cast<T>(v);  // integer -> integer wraps modulo 2^n, as numpy's astype does
  }
}

template <class Src, class T>
void convert_all(const NpyHeader& header, std::span<const std::byte> raw, std::vector<T>& out) {
  const std::size_t n = out.size();
  const bool swap = header.big_endian;
  std::size_t non_unit_dims = 0;
  for (const std::int64_t d : header.shape) non_unit_dims += d > 1 ? 1 : 0;
  if (!header.fortran_order || non_unit_dims <= 1) {
    if constexpr (std::is_same_v<Src, T> && !std::is_same_v<T, bool>) {
      if (!swap) {
        if (n != 0) std::memcpy(out.data(), raw.data(), n * sizeof(T));
        return;
      }
    }
    for (std::size_t i = 0; i < n; ++i) out[i] = convert_value<T>(load<Src>(raw.data(), i, swap));
    return;
  }
  // Fortran order: walk the C-order index and keep the matching Fortran offset up to date.
  const std::size_t rank = header.shape.size();
  std::vector<std::size_t> fortran_stride(rank), index(rank, 0);
  std::size_t stride = 1;
  for (std::size_t k = 0; k < rank; ++k) {
    fortran_stride[k] = stride;
    stride *= static_cast<std::size_t>(header.shape[k]);
  }
  std::size_t src = 0;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = convert_value<T>(load<Src>(raw.data(), src, swap));
    for (std::size_t k = rank; k-- > 0;) {
      src += fortran_stride[k];
      if (++index[k] < static_cast<std::size_t>(header.shape[k])) break;
      src -= fortran_stride[k] * index[k];
      index[k] = 0;
    }
  }
}

// UTF-8 -> code points; throws on malformed input (overlong forms, surrogates, past U+10FFFF).
std::u32string decode_utf8(const std::string& text) {
  std::u32string out;
  std::size_t i = 0;
  const auto bad = [&]() { return Error("encode_npy_string: invalid UTF-8 at byte " + std::to_string(i)); };
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    // The lead byte's high bits give the number of continuation bytes; the rest are payload.
    const int extra = lead < 0x80             ? 0
                      : (lead & 0xe0) == 0xc0 ? 1
                      : (lead & 0xf0) == 0xe0 ? 2
                      : (lead & 0xf8) == 0xf0 ? 3
                                              : -1;
    if (extra < 0) throw bad();
    constexpr unsigned kPayloadMask[] = {0x7f, 0x1f, 0x0f, 0x07};
    char32_t cp = lead & kPayloadMask[extra];
    if (i + static_cast<std::size_t>(extra) >= text.size()) throw bad();
    for (int k = 1; k <= extra; ++k) {
      const auto c = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
      if ((c & 0xc0) != 0x80) throw bad();
      cp = (cp << 6) | (c & 0x3f);
    }
    constexpr char32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw bad();
    out += cp;
    i += static_cast<std::size_t>(extra) + 1;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::vector<std::byte> encode_header_for_descr(const std::string& descr, const Shape& shape) {
  for (const std::int64_t d : shape) {
    if (d < 0) throw Error("encode_npy_header: negative dimension in shape " + shape_string(shape));
  }
  const std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  // Version 1.0 stores the header length in 2 bytes; 2.0 in 4 bytes, for dicts of huge-rank shapes.
  std::size_t prefix = kMagicSize + 2 + 2;
  std::size_t unpadded = prefix + dict.size() + 1;
  std::size_t header_len = dict.size() + 1 + (kDataAlign - unpadded % kDataAlign) % kDataAlign;
  int major = 1;
  if (header_len > 0xffff) {
    major = 2;
    prefix = kMagicSize + 2 + 4;
    unpadded = prefix + dict.size() + 1;
    header_len = dict.size() + 1 + (kDataAlign - unpadded % kDataAlign) % kDataAlign;
  }
  std::vector<std::byte> out;
  out.reserve(prefix + header_len);
  for (std::size_t i = 0; i < kMagicSize; ++i) out.push_back(static_cast<std::byte>(kMagic[i]));
  out.push_back(static_cast<std::byte>(major));
  out.push_back(std::byte{0});
  for (std::size_t i = 0; i < prefix - kMagicSize - 2; ++i)
    out.push_back(static_cast<std::byte>((header_len >> (8 * i)) & 0xff));
  for (const char c : dict) out.push_back(static_cast<std::byte>(c));
  out.resize(prefix + header_len - 1, static_cast<std::byte>(' '));
  out.push_back(static_cast<std::byte>('\n'));
  return out;
}

std::size_t expected_data_bytes(DType dtype, const Shape& shape, const std::string& who) {
  std::int64_t numel = 0;
  try {
    numel = shape_numel(shape);
  } catch (const Error& e) {
    throw Error(who + ": " + e.what() + " " + shape_string(shape));
  }
  const std::size_t item = dtype_size(dtype);
  if (static_cast<std::uint64_t>(numel) > std::numeric_limits<std::size_t>::max() / item) {
    throw Error(who + ": shape " + shape_string(shape) + " is too large");
  }
  return static_cast<std::size_t>(numel) * item;
}

void check_data_size(DType dtype, const Shape& shape, std::size_t got, const std::string& who) {
  const std::size_t want = expected_data_bytes(dtype, shape, who);
  if (got != want) {
    throw Error(who + ": data has " + std::to_string(got) + " bytes, but " + dtype_name(dtype) + " " +
                shape_string(shape) + " needs " + std::to_string(want));
  }
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

NpyHeader parse_npy_header(std::span<const std::byte> bytes, const std::string& name) {
  if (bytes.empty() || std::memcmp(bytes.data(), kMagic, std::min(bytes.size(), kMagicSize)) != 0) {
    throw Error(name + ": not a .npy file (bad magic)");
  }
  if (bytes.size() < kMagicSize + 2)
    throw Error(name + ": truncated header (" + std::to_string(bytes.size()) + " bytes)");
  NpyHeader header;
  header.version_major = std::to_integer<int>(bytes[6]);
  const int minor = std::to_integer<int>(bytes[7]);
  if (header.version_major < 1 || header.version_major > 3 || minor != 0) {
    throw Error(name + ": unsupported .npy format version " + std::to_string(header.version_major) + "." +
                std::to_string(minor));
  }
  const std::size_t len_width = header.version_major == 1 ? 2 : 4;
  const std::size_t dict_start = kMagicSize + 2 + len_width;
  if (bytes.size() < dict_start)
    throw Error(name + ": truncated header (" + std::to_string(bytes.size()) + " bytes)");
  const std::size_t header_len = read_le(bytes, kMagicSize + 2, len_width);
  if (header_len > bytes.size() - dict_start) {
    throw Error(name + ": header length " + std::to_string(header_len) + " runs past the end of the file (" +
                std::to_string(bytes.size()) + " bytes)");
  }
  header.data_offset = dict_start + header_len;
  const std::string_view dict(reinterpret_cast<const char*>(bytes.data() + dict_start), header_len);
  const HeaderParser::Fields fields = HeaderParser(dict, name).parse();

  const ParsedDescr descr = parse_descr(fields.descr, name);
  header.dtype = descr.dtype;
  header.big_endian = descr.big_endian;
  header.item_size = descr.item_size;
  header.fortran_order = fields.fortran_order;
  header.shape = fields.shape;

  // With a zero dimension the array is empty whatever the other dimensions multiply to (numpy agrees).
  bool empty = false;
  for (const std::int64_t d : header.shape) empty = empty || d == 0;
  std::int64_t numel = 1;
  if (empty) {
    numel = 0;
  } else {
    for (const std::int64_t d : header.shape) {
      if (numel > std::numeric_limits<std::int64_t>::max() / d) {
        throw Error(name + ": element count of shape " + shape_string(header.shape) + " overflows 64 bits");
      }
      numel *= d;
    }
  }
  header.numel = numel;
  const auto limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (header.item_size != 0 && static_cast<std::uint64_t>(numel) > limit / header.item_size) {
    throw Error(name + ": byte count of shape " + shape_string(header.shape) + " overflows 64 bits");
  }
  header.data_bytes = static_cast<std::size_t>(numel) * header.item_size;
  const std::size_t available = bytes.size() - header.data_offset;
  if (header.data_bytes > available) {
    throw Error(name + ": truncated data: the header needs " + std::to_string(header.data_bytes) +
                " bytes, the file has " + std::to_string(available));
  }
  if (header.data_bytes < available) {
    throw Error(name + ": " + std::to_string(available - header.data_bytes) +
                " unexpected bytes after the data");
  }
  return header;
}

std::vector<std::byte> encode_npy_header(DType dtype, const Shape& shape) {
  return encode_header_for_descr(dtype_descr(dtype), shape);
}

NpyArray::~NpyArray() = default;

bool NpyArray::is_native_c_order() const {
  if (header_.big_endian) return false;
  if (header_.fortran_order) {
    // With at most one dimension longer than 1, Fortran and C order are the same bytes.
    int non_unit_dims = 0;
    for (const std::int64_t d : header_.shape) non_unit_dims += d > 1 ? 1 : 0;
    if (non_unit_dims > 1) return false;
  }
  // A hand-made file may put the data at any offset; a misaligned T* would be undefined behaviour.
  const std::size_t align = header_.dtype == DType::kUnicode ? 4 : header_.item_size;
  return align <= 1 || reinterpret_cast<std::uintptr_t>(raw_.data()) % align == 0;
}

template <class T>
std::vector<T> NpyArray::to_vector() const {
  if (header_.dtype == DType::kUnicode) throw Error(name_ + ": a unicode string array has no numeric values");
  std::vector<T> out(static_cast<std::size_t>(header_.numel));
  switch (header_.dtype) {
    case DType::kFloat16:
      convert_all<half>(header_, raw_, out);
      break;
    case DType::kFloat32:
      convert_all<float>(header_, raw_, out);
      break;
    case DType::kFloat64:
      convert_all<double>(header_, raw_, out);
      break;
    case DType::kInt8:
      convert_all<std::int8_t>(header_, raw_, out);
      break;
    case DType::kUint8:
      convert_all<std::uint8_t>(header_, raw_, out);
      break;
    case DType::kInt16:
      convert_all<std::int16_t>(header_, raw_, out);
      break;
    case DType::kUint16:
      convert_all<std::uint16_t>(header_, raw_, out);
      break;
    case DType::kInt32:
      convert_all<std::int32_t>(header_, raw_, out);
      break;
    case DType::kUint32:
      convert_all<std::uint32_t>(header_, raw_, out);
      break;
    case DType::kInt64:
      convert_all<std::int64_t>(header_, raw_, out);
      break;
    case DType::kUint64:
      convert_all<std::uint64_t>(header_, raw_, out);
      break;
    case DType::kBool:
      convert_all<bool>(header_, raw_, out);
      break;
    case DType::kUnicode:
      break;
  }
  return out;
}

template std::vector<float> NpyArray::to_vector<float>() const;
template std::vector<double> NpyArray::to_vector<double>() const;
template std::vector<half> NpyArray::to_vector<half>() const;
template std::vector<std::int8_t> NpyArray::to_vector<std::int8_t>() const;
template std::vector<std::int16_t> NpyArray::to_vector<std::int16_t>() const;
template std::vector<std::int32_t> NpyArray::to_vector<std::int32_t>() const;
template std::vector<std::int64_t> NpyArray::to_vector<std::int64_t>() const;
template std::vector<std::uint8_t> NpyArray::to_vector<std::uint8_t>() const;
template std::vector<std::uint16_t> NpyArray::to_vector<std::uint16_t>() const;
template std::vector<std::uint32_t> NpyArray::to_vector<std::uint32_t>() const;
template std::vector<std::uint64_t> NpyArray::to_vector<std::uint64_t>() const;
template std::vector<bool> NpyArray::to_vector<bool>() const;

std::string NpyArray::as_string() const {
  if (header_.dtype != DType::kUnicode) {
    throw Error(name_ + ": expected a unicode string, got dtype " + std::string(dtype_name(header_.dtype)));
  }
  if (header_.numel != 1) {
    throw Error(name_ + ": expected a single string, got shape " + shape_string(header_.shape));
  }
  std::u32string text;
  for (std::size_t i = 0; i < header_.item_size / 4; ++i) {
    text += static_cast<char32_t>(load<std::uint32_t>(raw_.data(), i, header_.big_endian));
  }
  // numpy pads short strings with NUL and drops trailing NULs when reading; so do we.
  while (!text.empty() && text.back() == U'\0') text.pop_back();
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t cp = text[i];
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      throw Error(name_ + ": invalid code point " + std::to_string(cp) + " at character " +
                  std::to_string(i));
    }
    append_utf8(out, cp);
  }
  return out;
}

void NpyArray::release(std::size_t offset, std::size_t len) const {
  if (!storage_ || storage_->map == nullptr || offset >= raw_.size()) return;
  len = std::min(len, raw_.size() - offset);
  // Only whole pages inside the range: a page shared with a neighbour may still be wanted.
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::byte* begin = raw_.data() + offset;
  const std::size_t to_boundary = (page - reinterpret_cast<std::uintptr_t>(begin) % page) % page;
  if (to_boundary >= len) return;
  const std::size_t whole_pages = (len - to_boundary) / page * page;
  // Advice only: a private read-only mapping refaults dropped pages from the file, so failure is harmless.
  if (whole_pages > 0) ::madvise(const_cast<std::byte*>(begin + to_boundary), whole_pages, MADV_DONTNEED);
}

NpyArray parse_npy(std::vector<std::byte> bytes, const std::string& name) {
  auto storage = std::make_shared<NpyArray::Storage>();
  storage->bytes = std::move(bytes);
  NpyHeader header = parse_npy_header(storage->bytes, name);
  const std::span<const std::byte> raw(storage->bytes.data() + header.data_offset, header.data_bytes);
  return NpyArray(name, std::move(header), std::move(storage), raw);
}

NpyArray read_npy(const std::string& path, std::size_t mmap_threshold) {
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error(path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  const auto size = static_cast<std::size_t>(st.st_size);

  if (size >= mmap_threshold && size > 0) {
    // A file truncated by someone else while mapped would fault on access (SIGBUS); that is the price
    // of not copying multi-gigabyte weights, and the files we read are not being rewritten in place.
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (map == MAP_FAILED) throw Error(path + ": mmap failed: " + std::strerror(errno));
    auto storage = std::make_shared<NpyArray::Storage>();
    storage->map = map;
    storage->map_size = size;
    ::madvise(map, size, MADV_SEQUENTIAL);
    const std::span<const std::byte> bytes(static_cast<const std::byte*>(map), size);
    NpyHeader header = parse_npy_header(bytes, path);
    const std::span<const std::byte> raw = bytes.subspan(header.data_offset, header.data_bytes);
    return NpyArray(path, std::move(header), std::move(storage), raw);
  }

  std::vector<std::byte> bytes(size);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd.get(), bytes.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(path + ": read failed: " + std::strerror(errno));
    if (n == 0) break;  // the file shrank since fstat: parse what is there, the checks will catch it
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  return parse_npy(std::move(bytes), path);
}

std::vector<std::byte> encode_npy(DType dtype, const Shape& shape, std::span<const std::byte> data) {
  check_data_size(dtype, shape, data.size(), "encode_npy");
  std::vector<std::byte> out = encode_npy_header(dtype, shape);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::vector<std::byte> encode_npy_string(const std::string& utf8) {
  const std::u32string text = decode_utf8(utf8);
  // np.array("") is '<U1' holding one NUL: numpy never writes a zero-width string dtype.
  const std::size_t chars = std::max<std::size_t>(text.size(), 1);
  std::vector<std::byte> out = encode_header_for_descr("<U" + std::to_string(chars), Shape{});
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
