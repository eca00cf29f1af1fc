// Activations quantized on the fly for the INT8/INT4 kernels: uint8 codes with PyTorch's dynamic qparams
// and reduce_range (golden rules 4 and 5, as in quantized::linear_dynamic), per row or per tensor.
//
// Why reduce_range (7-bit activations): the AVX2 kernels multiply with _mm256_maddubs_epi16, which adds
// two u8*s8 products into a saturating int16. With codes <= 128 and weights >= -128 the worst pair is
// 2 * 128 * -128 = -32768, which still fits, so the int16 sums are exact. reduce_range keeps codes in
// [0, 127] (128 at most, when the zero point and the rounded maximum both round up), which is why
// PyTorch's x86 backend uses it too. Codes above 128 can only come from callers filling the struct
// themselves; the AVX2 INT8 kernel then takes its exact scalar path (see max_code). INT4 products are
// at most 255 * 15 per byte, far from the limit, and VNNI's vpdpbusd has no int16 step at all.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "quantkit/kernels/aligned_vector.hpp"

namespace qk::kernels {

enum class ActivationScaling {
  kPerRow,  // one scale and zero point per row of X (default: a large row does not cost the others precision)
  kPerTensor,  // one for the whole X: PyTorch's quantized::linear_dynamic, bit for bit (golden rule 9)
};

// Static activation quantization: a scale and zero point fixed ahead of time by calibration, applied to
// every row. Codes are uint8 in [qmin, qmax] (a sub-range of [0, 255]); a calibration made for int8
// storage is the same grid shifted by 128 (see calib/activation_quant.hpp). Keep qmax - zero_point and
// zero_point - qmin within 128 (reduce_range, as the x86 preset does) for the AVX2 INT8 fast path.
struct StaticActivationParams {
  float scale = 1.0f;
  std::int32_t zero_point = 0;
  std::int32_t qmin = 0;
  std::int32_t qmax = 255;
};

struct ActivationQuantOptions {
  ActivationScaling scaling = ActivationScaling::kPerRow;
  bool reduce_range = true;  // dynamic qparams over [0, 127] (see above); false uses [0, 255]
  std::optional<StaticActivationParams> fixed;  // static quantization: skips the dynamic qparams
};

struct QuantizedActivations {
  static constexpr std::int64_t kBlock = 32;  // columns per entry of block_sums
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t stride = 0;                // padded row length (the weights' stride); padding codes are 0
  AlignedVector<std::uint8_t> codes;      // [rows, stride]
  std::vector<float> scales;              // [rows]
  std::vector<std::int32_t> zero_points;  // [rows]
  std::vector<std::int32_t> block_sums;   // [rows, stride / kBlock] sum of the codes of each 32-column block
  std::int32_t max_code = 0;              // the largest code (the AVX2 INT8 kernel's fast path needs <= 128)
};

// Quantizes x [rows, cols] (row-major, row pitch `cols`) into out, padding rows to `stride` (a multiple of
// kBlock, >= cols). Throws qk::Error if x holds NaN or Inf. Reuses out's buffers.
//
// Per-row dynamic and static quantization are fused: each row is checked, measured and quantized while
// it sits in L1, so the input is read from memory once. Per-tensor dynamic needs the whole tensor's
// range before the first code, so it sweeps twice (the second sweep from cache for activations up to the
// L2/L3 size).
void quantize_activations(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                          const ActivationQuantOptions& options, QuantizedActivations& out);
inline void quantize_activations(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                                 ActivationScaling scaling, QuantizedActivations& out) {
  quantize_activations(x, rows, cols, stride, ActivationQuantOptions{scaling, true, std::nullopt}, out);
}

}  // namespace qk::kernels
