// Q4_K's twelve packed bytes of 6-bit scales and mins unpacked all at once (ggml's get_scale_min_k4 for the
// eight sub-blocks, in the word arithmetic of ggml's SIMD dot products), for the per-ISA GEMV files.
// Internal linkage on purpose, as simd_x86.hpp: each ISA's file gets its own copy.
#pragma once

#include <cstdint>
#include <cstring>

namespace {

// The eight 6-bit scales and the eight 6-bit mins, one byte each (byte j of the little-endian word:
// sub-block j), kept in registers: stored to memory as 32-bit words and read back wider, they would
// stall the load (no store-to-load forwarding across several stores).
struct Q4KScales {
  std::uint64_t scales;
  std::uint64_t mins;
};

// Bytes 0..3 hold scales 0..3 (low 6 bits) and bytes 4..7 mins 0..3; scale and min 4..7 take their low 4
// bits from bytes 8..11 (low and high nibble) and their top 2 bits from the top bits of bytes 0..3 and 4..7.
inline Q4KScales unpack_q4_k_scales(const std::uint8_t* packed) {
  constexpr std::uint32_t kLow6 = 0x3f3f3f3f, kLow4 = 0x0f0f0f0f, kLow2 = 0x03030303;
  std::uint32_t u[3];
  std::memcpy(u, packed, 12);  // little-endian words, as ggml reads them
  const std::uint32_t scales_0_3 = u[0] & kLow6, mins_0_3 = u[1] & kLow6;
  const std::uint32_t scales_4_7 = (u[2] & kLow4) | (((u[0] >> 6) & kLow2) << 4);
  const std::uint32_t mins_4_7 = ((u[2] >> 4) & kLow4) | (((u[1] >> 6) & kLow2) << 4);
  return {scales_0_3 | std::uint64_t{scales_4_7} << 32, mins_0_3 | std::uint64_t{mins_4_7} << 32};
}

}  // namespace
