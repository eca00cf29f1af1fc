// One table of the element formats quantkit stores (ggml's type_traits is the model): every format has
// one enum value and one row of traits, and every place that names a format (the quantized file's element
// field, qtool's --format and mixed-precision candidates, the embedding table storages) reads its name and
// size from here. The table lives in the core, so it holds no kernels: the SIMD dequantize and GEMV of a
// format are found through the kernels' registries by the same enum.
//
//   kind        stored as                                   value
//   float       fp32 / fp16 / bf16 words                    the word
//   integer     2..8-bit codes, a float32 scale and an      (q - zero_point) * scale   (golden rules)
//               int32 zero point per slot
//   codebook    8-bit FP8 or 4-bit NF4 codes, a float32     codebook[q] * scale        (element_format.hpp)
//               scale per slot
//   block       self-contained blocks, scales inside        block_formats.hpp
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace qk {

enum class Format : std::uint8_t {
  kFloat32,
  kFloat16,
  kBFloat16,
  kInt8,
  kInt7,
  kInt6,
  kInt5,
  kInt4,
  kInt3,
  kInt2,
  kUint8,
  kUint7,
  kUint6,
  kUint5,
  kUint4,
  kUint3,
  kUint2,
  kFp8E4M3,
  kFp8E5M2,
  kNf4,
  kBlockQ4DQ,
};

enum class FormatKind : std::uint8_t { kFloat, kInteger, kCodebook, kBlock };

// Converts n values of a self-contained format (float and block formats) to float32 and back. Block
// formats need n to be a multiple of the block size. The slot-scaled formats (integer, codebook) have
// none: their scales live outside the codes (core/quantize.hpp and core/element_format.hpp convert them).
using ToFloatFn = void (*)(const void* src, std::int64_t n, float* dst);
using FromFloatFn = void (*)(const float* src, std::int64_t n, void* dst);

struct FormatTraits {
  Format format;
  const char* name;         // as written in files and on the command line: "int4", "fp16", "nf4", "q4dq"
  FormatKind kind;
  int code_bits;            // bits of one stored code or word (a block format: of one weight's code)
  bool is_signed;           // integer formats: signed codes (int8 vs uint8 storage)
  std::int64_t block_size;  // block formats: weights per block; 0 for the others
  std::size_t block_bytes;  // block formats: bytes per block, scales included; 0 for the others
  ToFloatFn to_float;       // the scalar reference, or nullptr (slot-scaled formats)
  FromFloatFn from_float;   // the scalar reference (round to nearest even / nearest level), or nullptr
};

// Every format, in enum order.
std::span<const FormatTraits> all_formats();
const FormatTraits& format_traits(Format f);
inline const char* to_string(Format f) { return format_traits(f).name; }
// The format named `name` (exactly as in the table); throws qk::Error listing the names.
Format parse_format(std::string_view name);
// The integer format of `bits` (2..8) codes, signed or not; throws for other widths.
Format integer_format(int bits, bool is_signed);

// Stored bits per weight, scales included, when one float32 scale and one int32 zero point (what the
// quantized file stores per slot, for codebook formats too) serve slot_size weights; float and block
// formats ignore slot_size.
double bits_per_weight(Format f, std::int64_t slot_size);

}  // namespace qk
