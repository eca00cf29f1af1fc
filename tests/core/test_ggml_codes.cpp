// The 32-weight block quantizers (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) run four weights at a time with SSE2
// (src/core/ggml_block_codes.hpp). Here they meet a plain transcription of ggml's scalar references
// (quantize_row_q4_0_ref ... in ggml-quants.c: first largest magnitude, C conversions to int8_t /
// uint8_t, roundf) on blocks built to hit the awkward cases: signed zeros at the minimum or maximum, equal
// magnitudes of both signs, codes exactly on .5, tiny scales whose inverse overflows, and random values.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/core/half.hpp"

namespace qk::ggml {
namespace {

constexpr int kQ = 32;

// C's (int)f as x86-64 executes it: INT32_MIN for NaN and out-of-range values.
std::int32_t c_int(float f) {
  if (!(f > -2147483904.0f && f < 2147483648.0f)) return INT32_MIN;
  return static_cast<std::int32_t>(f);
}
std::uint8_t c_int8(float f) { return static_cast<std::uint8_t>(static_cast<std::int8_t>(c_int(f))); }

void put_half(std::vector<std::byte>& out, float v) {
  const std::uint16_t h = float_to_half_bits(v);
  out.push_back(static_cast<std::byte>(h & 0xff));
  out.push_back(static_cast<std::byte>(h >> 8));
}

// qh (5-bit types: bit 4 of code j at bit j, little-endian), then the low nibbles (j and j + 16 per byte).
void append_codes(std::vector<std::byte>& out, const std::uint8_t* codes, int bits) {
  std::uint32_t qh = 0;
  for (int j = 0; j < kQ; ++j) qh |= ((codes[j] & 0x10u) >> 4) << j;
  if (bits == 5)
    for (int k = 0; k < 4; ++k) out.push_back(static_cast<std::byte>(qh >> (8 * k)));
  for (int j = 0; j < kQ / 2; ++j)
    out.push_back(static_cast<std::byte>((codes[j] & 0x0f) | ((codes[j + 16] & 0x0f) << 4)));
}

// quantize_row_q4_0_ref / q5_0_ref for one block.
std::vector<std::byte> ref_symmetric(const float* x, int bits) {
  const int half = 1 << (bits - 1);
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQ; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  const float d = max / static_cast<float>(-half);
  const float id = d ? 1.0f / d : 0.0f;
  std::vector<std::byte> out;
  put_half(out, d);
  std::uint8_t codes[kQ];
  for (int j = 0; j < kQ; ++j)
    codes[j] = static_cast<std::uint8_t>(
        std::min<int>(2 * half - 1, static_cast<std::int8_t>(c_int(x[j] * id + (half + 0.5f)))));
  append_codes(out, codes, bits);
  return out;
}

// quantize_row_q4_1_ref / q5_1_ref for one block.
std::vector<std::byte> ref_affine(const float* x, int bits) {
  float min = 3.402823466e+38f, max = -3.402823466e+38f;
  for (int j = 0; j < kQ; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / static_cast<float>((1 << bits) - 1);
  const float id = d ? 1.0f / d : 0.0f;
  std::vector<std::byte> out;
  put_half(out, d);
  put_half(out, min);
  std::uint8_t codes[kQ];
  for (int j = 0; j < kQ; ++j) {
    const float v = (x[j] - min) * id + 0.5f;
    codes[j] = bits == 4 ? static_cast<std::uint8_t>(std::min<int>(15, static_cast<std::int8_t>(c_int(v))))
                         : static_cast<std::uint8_t>(c_int(v));
  }
  append_codes(out, codes, bits);
  return out;
}

// quantize_row_q8_0_ref for one block.
std::vector<std::byte> ref_q8_0(const float* x) {
  float amax = 0.0f;
  for (int j = 0; j < kQ; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float id = d ? 1.0f / d : 0.0f;
  std::vector<std::byte> out;
  put_half(out, d);
  for (int j = 0; j < kQ; ++j) out.push_back(static_cast<std::byte>(c_int8(std::round(x[j] * id))));
  return out;
}

// Blocks that hit every branch of the references, then random ones.
std::vector<float> awkward_blocks() {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> pick(0, kQ - 1), kind(0, 9);
  std::vector<float> all;
  for (int b = 0; b < 4000; ++b) {
    float x[kQ];
    const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
    for (float& v : x) v = normal(rng) * scale;
    switch (kind(rng)) {
      case 0:  // all non-negative with signed zeros: the minimum is a zero, which sign comes first
        for (float& v : x) v = std::fabs(v);
        x[pick(rng)] = -0.0f;
        x[pick(rng)] = 0.0f;
        break;
      case 1:  // all non-positive with signed zeros
        for (float& v : x) v = -std::fabs(v);
        x[pick(rng)] = 0.0f;
        x[pick(rng)] = -0.0f;
        break;
      case 2:  // the largest magnitude twice, both signs, in either order
        x[pick(rng)] = 3 * scale;
        x[pick(rng)] = -3 * scale;
        break;
      case 3:  // values on a grid: codes land on .5 exactly
        for (float& v : x) v = static_cast<float>(static_cast<int>(rng() % 33) - 16) * 0.5f;
        break;
      case 4:  // a tiny block: the scale's inverse overflows to inf
        for (float& v : x) v = normal(rng) * 1e-39f;
        break;
      case 5:  // zeros only, of both signs
        for (int j = 0; j < kQ; ++j) x[j] = (rng() & 1) ? 0.0f : -0.0f;
        break;
      case 6:  // constant
        for (float& v : x) v = x[0];
        break;
      default:
        break;
    }
    all.insert(all.end(), x, x + kQ);
  }
  return all;
}

TEST(GgmlCodes, BlockQuantizersEqualTheScalarReferenceOnAwkwardBlocks) {
  const std::vector<float> x = awkward_blocks();
  const std::int64_t n = static_cast<std::int64_t>(x.size());
  struct Case {
    Type type;
    std::vector<std::byte> (*ref)(const float*);
  };
  const Case cases[] = {
      {Type::kQ4_0, [](const float* b) { return ref_symmetric(b, 4); }},
      {Type::kQ5_0, [](const float* b) { return ref_symmetric(b, 5); }},
      {Type::kQ4_1, [](const float* b) { return ref_affine(b, 4); }},
      {Type::kQ5_1, [](const float* b) { return ref_affine(b, 5); }},
      {Type::kQ8_0, [](const float* b) { return ref_q8_0(b); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(traits(c.type).name);
    std::vector<std::byte> got(static_cast<std::size_t>(row_bytes(c.type, n)));
    quantize_row(c.type, x.data(), n, got.data());
    std::vector<std::byte> want;
    for (std::int64_t b = 0; b < n / kQ; ++b) {
      const std::vector<std::byte> block = c.ref(x.data() + b * kQ);
      want.insert(want.end(), block.begin(), block.end());
    }
    ASSERT_EQ(got.size(), want.size());
    std::size_t differing = 0, first = 0;
    const std::size_t block_bytes = traits(c.type).block_bytes;
    for (std::size_t i = 0; i < got.size(); i += block_bytes)
      if (std::memcmp(got.data() + i, want.data() + i, block_bytes) != 0 && differing++ == 0)
        first = i / block_bytes;
    EXPECT_EQ(differing, 0u) << "first differing block " << first;
  }
}

}  // namespace
}  // namespace qk::ggml
