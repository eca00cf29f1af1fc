// UTF-8 encoding and decoding for numpy's unicode strings (UTF-32 in the file, UTF-8 in our API).
#include <string>

#include "npy_internal.hpp"

namespace qk::io::detail {

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

}  // namespace qk::io::detail
