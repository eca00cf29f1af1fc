// Bit packing of sub-8-bit codes. Layout (the same for every width 1..8, and ONNX's int4 layout at 4 bits):
// the codes form one little-endian bit stream; code i occupies bits [i*b, i*b + b) counted from bit 0 of
// byte 0, least significant bit first. So at 4 bits element 0 is the low nibble of byte 0, at 2 bits
// element 0 is bits 0-1, and at 3 bits eight codes fill three bytes (code 2 straddles bytes 0 and 1).
// Signed codes are stored as their low b bits (two's complement) and sign-extended on unpack.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "quantkit/core/error.hpp"

namespace qk {

inline std::int64_t packed_bytes(std::int64_t count, int bits) {
  if (bits < 1 || bits > 8) throw Error("packing supports 1..8 bits, got " + std::to_string(bits));
  if (count < 0 || count > (INT64_MAX - 7) / bits)
    throw Error("packing: element count " + std::to_string(count) + " is out of range");
  return (count * bits + 7) / 8;
}

// Packs codes[0..n) into out (packed_bytes(n, bits) bytes). A long tensor can be packed chunk by chunk
// into successive parts of one buffer when every chunk but the last holds a multiple of 8 codes.
template <class Q>
inline void pack_bits(std::span<const Q> codes, int bits, std::span<std::uint8_t> out) {
  const std::int64_t n = static_cast<std::int64_t>(codes.size());
  if (static_cast<std::int64_t>(out.size()) < packed_bytes(n, bits))
    throw Error("pack_bits: output too small");
  const std::uint32_t mask = (1u << bits) - 1u;
  if (bits == 8) {
    for (std::int64_t i = 0; i < n; ++i)
      out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(codes[i]);
    return;
  }
  if (bits == 4) {
    for (std::int64_t i = 0; i + 1 < n; i += 2) {
      const auto lo = static_cast<std::uint32_t>(codes[i]) & mask;
      const auto hi = static_cast<std::uint32_t>(codes[i + 1]) & mask;
      out[static_cast<std::size_t>(i / 2)] = static_cast<std::uint8_t>(lo | (hi << 4));
    }
    if (n % 2)
      out[static_cast<std::size_t>(n / 2)] =
          static_cast<std::uint8_t>(static_cast<std::uint32_t>(codes[n - 1]) & mask);
    return;
  }
  // General bit stream: accumulate into a 32-bit window and flush whole bytes.
  std::uint32_t window = 0;
  int filled = 0;
  std::size_t pos = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    window |= (static_cast<std::uint32_t>(codes[i]) & mask) << filled;
    filled += bits;
    while (filled >= 8) {
      out[pos++] = static_cast<std::uint8_t>(window & 0xffu);
      window >>= 8;
      filled -= 8;
    }
  }
  if (filled > 0) out[pos] = static_cast<std::uint8_t>(window & 0xffu);
}

// Unpacks n codes; signed codes are sign-extended from `bits` bits.
template <class Q>
inline void unpack_bits(std::span<const std::uint8_t> packed, int bits, bool is_signed, std::span<Q> codes) {
  const std::int64_t n = static_cast<std::int64_t>(codes.size());
  if (static_cast<std::int64_t>(packed.size()) < packed_bytes(n, bits))
    throw Error("unpack_bits: input too small");
  const std::uint32_t mask = (1u << bits) - 1u;
  const std::uint32_t sign_bit = 1u << (bits - 1);
  auto decode = [&](std::uint32_t raw) -> Q {
    if (is_signed && (raw & sign_bit))
      return static_cast<Q>(static_cast<std::int32_t>(raw) - static_cast<std::int32_t>(1u << bits));
    return static_cast<Q>(raw);
  };
  std::uint32_t window = 0;
  int filled = 0;
  std::size_t pos = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    while (filled < bits) {
      window |= static_cast<std::uint32_t>(packed[pos++]) << filled;
      filled += 8;
    }
    codes[static_cast<std::size_t>(i)] = decode(window & mask);
    window >>= bits;
    filled -= bits;
  }
}

}  // namespace qk
