// .npy headers: the hand-written parser of the header dict (a Python literal, never evaluated or
// unpickled), the descriptor rules, validation of a file's sizes, and the header we write.
#include <algorithm>
#include <cstring>
#include <limits>
#include <string_view>

#include "npy_internal.hpp"

namespace qk::io {

using detail::kNpyMagic;
using detail::kNpyMagicSize;

namespace {

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

}  // namespace

namespace detail {

std::vector<std::byte> encode_header_for_descr(const std::string& descr, const Shape& shape) {
  for (const std::int64_t d : shape) {
    if (d < 0) throw Error("encode_npy_header: negative dimension in shape " + shape_string(shape));
  }
  const std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  // Version 1.0 stores the header length in 2 bytes; 2.0 in 4 bytes, for dicts of huge-rank shapes.
  std::size_t prefix = kNpyMagicSize + 2 + 2;
  std::size_t unpadded = prefix + dict.size() + 1;
  std::size_t header_len = dict.size() + 1 + (kDataAlign - unpadded % kDataAlign) % kDataAlign;
  int major = 1;
  if (header_len > 0xffff) {
    major = 2;
    prefix = kNpyMagicSize + 2 + 4;
    unpadded = prefix + dict.size() + 1;
    header_len = dict.size() + 1 + (kDataAlign - unpadded % kDataAlign) % kDataAlign;
  }
  std::vector<std::byte> out;
  out.reserve(prefix + header_len);
  for (std::size_t i = 0; i < kNpyMagicSize; ++i) out.push_back(static_cast<std::byte>(kNpyMagic[i]));
  out.push_back(static_cast<std::byte>(major));
  out.push_back(std::byte{0});
  for (std::size_t i = 0; i < prefix - kNpyMagicSize - 2; ++i)
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

}  // namespace detail

NpyHeader parse_npy_header(std::span<const std::byte> bytes, const std::string& name) {
  if (bytes.empty() || std::memcmp(bytes.data(), kNpyMagic, std::min(bytes.size(), kNpyMagicSize)) != 0) {
    throw Error(name + ": not a .npy file (bad magic)");
  }
  if (bytes.size() < kNpyMagicSize + 2)
    throw Error(name + ": truncated header (" + std::to_string(bytes.size()) + " bytes)");
  NpyHeader header;
  header.version_major = std::to_integer<int>(bytes[6]);
  const int minor = std::to_integer<int>(bytes[7]);
  if (header.version_major < 1 || header.version_major > 3 || minor != 0) {
    throw Error(name + ": unsupported .npy format version " + std::to_string(header.version_major) + "." +
                std::to_string(minor));
  }
  const std::size_t len_width = header.version_major == 1 ? 2 : 4;
  const std::size_t dict_start = kNpyMagicSize + 2 + len_width;
  if (bytes.size() < dict_start)
    throw Error(name + ": truncated header (" + std::to_string(bytes.size()) + " bytes)");
  const std::size_t header_len = read_le(bytes, kNpyMagicSize + 2, len_width);
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
  return detail::encode_header_for_descr(dtype_descr(dtype), shape);
}

}  // namespace qk::io
