// The format table: one row per format, in enum order (a static_assert below keeps it so).
#include "quantkit/core/format.hpp"

#include <array>
#include <cstring>

#include "quantkit/core/block_formats.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/half.hpp"

namespace qk {

namespace {

void float32_to_float(const void* src, std::int64_t n, float* dst) {
  if (n > 0) std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
}
void float32_from_float(const float* src, std::int64_t n, void* dst) {
  if (n > 0) std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
}

template <class W>
void word_to_float(const void* src, std::int64_t n, float* dst) {
  const auto* w = static_cast<const W*>(src);
  for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(w[i]);
}
template <class W>
void word_from_float(const float* src, std::int64_t n, void* dst) {
  auto* w = static_cast<W*>(dst);
  for (std::int64_t i = 0; i < n; ++i) w[i] = W(src[i]);
}

template <class Block>
std::int64_t whole_blocks(std::int64_t n, const char* name) {
  if (n < 0 || n % Block::kWeights != 0)
    throw Error(std::string(name) + ": " + std::to_string(n) + " values are not whole blocks of " +
                std::to_string(Block::kWeights));
  return n / Block::kWeights;
}

void q4dq_blocks_to_float(const void* src, std::int64_t n, float* dst) {
  whole_blocks<BlockQ4DQ>(n, "q4dq blocks");
  dequantize_q4dq_ref(static_cast<const BlockQ4DQ*>(src), n, dst);
}
void q4dq_blocks_from_float(const float* src, std::int64_t n, void* dst) {
  const std::int64_t blocks = whole_blocks<BlockQ4DQ>(n, "q4dq blocks");
  const std::vector<BlockQ4DQ> b = quantize_q4dq(std::span<const float>(src, static_cast<std::size_t>(n)));
  std::memcpy(dst, b.data(), static_cast<std::size_t>(blocks) * sizeof(BlockQ4DQ));
}

constexpr FormatTraits integer_row(Format f, const char* name, int bits, bool is_signed) {
  return {f, name, FormatKind::kInteger, bits, is_signed, 0, 0, nullptr, nullptr};
}

constexpr std::array kTable = {
    FormatTraits{Format::kFloat32, "fp32", FormatKind::kFloat, 32, true, 0, 0, float32_to_float,
                 float32_from_float},
    FormatTraits{Format::kFloat16, "fp16", FormatKind::kFloat, 16, true, 0, 0, word_to_float<half>,
                 word_from_float<half>},
    FormatTraits{Format::kBFloat16, "bf16", FormatKind::kFloat, 16, true, 0, 0, word_to_float<bfloat16>,
                 word_from_float<bfloat16>},
    integer_row(Format::kInt8, "int8", 8, true),
    integer_row(Format::kInt7, "int7", 7, true),
    integer_row(Format::kInt6, "int6", 6, true),
    integer_row(Format::kInt5, "int5", 5, true),
    integer_row(Format::kInt4, "int4", 4, true),
    integer_row(Format::kInt3, "int3", 3, true),
    integer_row(Format::kInt2, "int2", 2, true),
    integer_row(Format::kUint8, "uint8", 8, false),
    integer_row(Format::kUint7, "uint7", 7, false),
    integer_row(Format::kUint6, "uint6", 6, false),
    integer_row(Format::kUint5, "uint5", 5, false),
    integer_row(Format::kUint4, "uint4", 4, false),
    integer_row(Format::kUint3, "uint3", 3, false),
    integer_row(Format::kUint2, "uint2", 2, false),
    FormatTraits{Format::kFp8E4M3, "fp8-e4m3", FormatKind::kCodebook, 8, true, 0, 0, nullptr, nullptr},
    FormatTraits{Format::kFp8E5M2, "fp8-e5m2", FormatKind::kCodebook, 8, true, 0, 0, nullptr, nullptr},
    FormatTraits{Format::kNf4, "nf4", FormatKind::kCodebook, 4, true, 0, 0, nullptr, nullptr},
    FormatTraits{Format::kBlockQ4DQ, "q4dq", FormatKind::kBlock, 4, true, BlockQ4DQ::kWeights, sizeof(BlockQ4DQ),
                 q4dq_blocks_to_float, q4dq_blocks_from_float},
};

constexpr bool in_enum_order() {
  for (std::size_t i = 0; i < kTable.size(); ++i)
    if (static_cast<std::size_t>(kTable[i].format) != i) return false;
  return true;
}
static_assert(in_enum_order(), "the format table must list the formats in enum order");
static_assert(kTable.size() == static_cast<std::size_t>(Format::kBlockQ4DQ) + 1, "a format has no row");

}  // namespace

std::span<const FormatTraits> all_formats() { return kTable; }

const FormatTraits& format_traits(Format f) {
  const auto i = static_cast<std::size_t>(f);
  if (i >= kTable.size()) throw Error("unknown format " + std::to_string(i));
  return kTable[i];
}

Format parse_format(std::string_view name) {
  std::string names;
  for (const FormatTraits& t : kTable) {
    if (name == t.name) return t.format;
    names += (names.empty() ? "" : ", ") + std::string(t.name);
  }
  throw Error("unknown format '" + std::string(name) + "' (one of " + names + ")");
}

Format integer_format(int bits, bool is_signed) {
  if (bits < 2 || bits > 8) throw Error("integer formats have 2 to 8 bits, not " + std::to_string(bits));
  const int base = static_cast<int>(is_signed ? Format::kInt8 : Format::kUint8);
  return static_cast<Format>(base + (8 - bits));
}

double bits_per_weight(Format f, std::int64_t slot_size) {
  const FormatTraits& t = format_traits(f);
  switch (t.kind) {
    case FormatKind::kFloat:
      return t.code_bits;
    case FormatKind::kBlock:
      return 8.0 * static_cast<double>(t.block_bytes) / static_cast<double>(t.block_size);
    case FormatKind::kInteger:
    case FormatKind::kCodebook:
      break;
  }
  if (slot_size <= 0) throw Error("a slot holds at least one weight, not " + std::to_string(slot_size));
  // The quantized file stores a float32 scale and an int32 zero point for every slot, codebook formats too.
  return t.code_bits + 64.0 / static_cast<double>(slot_size);
}

}  // namespace qk
