// Weight matrices [rows = output features, cols = input features] in the layouts the GEMV/GEMM kernels
// read. Every format pads each row to a whole number of the kernels' steps with zero weights, so the
// kernels never need a tail loop over columns; `cols` is the logical width, `stride` the padded one.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "quantkit/kernels/aligned_vector.hpp"

namespace qk::kernels {

// FP32 weights, row-major, not padded (Eigen reads them in place).
struct Fp32Weights {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  AlignedVector<float> values;  // [rows, cols]
};

// IEEE binary16 weights, row-major, each row padded with zeros to a multiple of kFp16Step columns.
struct Fp16Weights {
  static constexpr std::int64_t kStep = 32;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t stride = 0;            // padded row length, a multiple of kStep
  AlignedVector<std::uint16_t> bits;  // [rows, stride] binary16 bit patterns (round to nearest even)
};

// INT8 weights, symmetric per output channel (PyTorch's per_channel_symmetric qint8: zero point 0,
// codes in [-128, 127], scale = max|w| / 127.5 by golden rule 2).
struct Int8Weights {
  static constexpr std::int64_t kStep = 64;  // one 512-bit load of codes
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t stride = 0;             // padded row length, a multiple of kStep
  AlignedVector<std::int8_t> codes;    // [rows, stride], padding is 0
  std::vector<float> scales;           // [rows]
  std::vector<std::int32_t> row_sums;  // [rows] sum of each row's codes: removes the activations' zero point
};

// INT4 weights, symmetric per group of `group_size` consecutive columns (codes in [-8, 7], zero point 0,
// scale = max|w| / 7.5 by golden rule 2). Two codes per byte, stored as the unsigned nibble code + 8.
// Every 32 columns take 16 bytes: byte j holds column j in its low nibble and column 16 + j in its high
// nibble (ggml's Q4_0 order). A 256-bit load then covers two 32-column blocks, one per 128-bit lane, and
// unpacks with an AND and a shift; lane-local integer sums never mix two blocks, so two groups of 32
// share one int32 -> float conversion and one FMA.
struct Int4Weights {
  static constexpr std::int64_t kChunk = 64;  // columns per 256-bit load
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t group_size = 32;        // 32, 64 or 128
  std::int64_t stride = 0;             // padded row length in columns: a multiple of kChunk and of group_size
  AlignedVector<std::uint8_t> packed;  // [rows, stride / 2], padding is the code 0 (nibble 8)
  std::vector<float> scales;  // [rows, stride / group_size]; a group made only of padding has scale 0
  // [rows] sum over groups of scale * (sum of the group's codes): removes the activations' zero point.
  std::vector<float> zero_point_terms;

  std::int64_t groups_per_row() const { return stride / group_size; }
};

// Packing from float32 [rows, cols] row-major. The quantization is the library's own (choose_qparams +
// quantize), so codes match `qtool quantize` with the same spec. Throws qk::Error on a non-finite weight
// or a bad shape.
Fp32Weights pack_fp32(std::span<const float> w, std::int64_t rows, std::int64_t cols);
Fp16Weights pack_fp16(std::span<const float> w, std::int64_t rows, std::int64_t cols);
Int8Weights pack_int8(std::span<const float> w, std::int64_t rows, std::int64_t cols);
Int4Weights pack_int4(std::span<const float> w, std::int64_t rows, std::int64_t cols,
                      std::int64_t group_size);

// Packing from codes already quantized elsewhere (a quantized .npz, PyTorch): codes [rows, cols]
// row-major; int8 scales [rows]; int4 codes in [-8, 7] and scales [rows, ceil(cols / group_size)].
Int8Weights pack_int8_codes(std::span<const std::int8_t> codes, std::span<const float> scales,
                            std::int64_t rows, std::int64_t cols);
Int4Weights pack_int4_codes(std::span<const std::int8_t> codes, std::span<const float> scales,
                            std::int64_t rows, std::int64_t cols, std::int64_t group_size);

// The weights back as float32 [rows, cols] (dequantized), for error measurement and tests.
std::vector<float> unpack_to_float(const Fp16Weights& w);
std::vector<float> unpack_to_float(const Int8Weights& w);
std::vector<float> unpack_to_float(const Int4Weights& w);
// The int4 codes in [-8, 7] as [rows, cols] (the inverse of pack_int4_codes' packing).
std::vector<std::int8_t> unpack_int4_codes(const Int4Weights& w);

// Bytes a kernel streams per call (codes + scales, padding included): the memory-bound cost.
std::int64_t weight_bytes(const Fp32Weights& w);
std::int64_t weight_bytes(const Fp16Weights& w);
std::int64_t weight_bytes(const Int8Weights& w);
std::int64_t weight_bytes(const Int4Weights& w);

}  // namespace qk::kernels
