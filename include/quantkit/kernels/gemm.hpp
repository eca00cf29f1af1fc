// Y = X W^T for FP32, FP16, INT8 and INT4 weights: GEMV when X has one row, GEMM for a batch of rows.
// X is float32 [batch, cols] and Y float32 [batch, rows], both row-major; bias (optional) is [rows].
//
// What each format computes:
// - FP32: Eigen (built with AVX2+FMA where the CPU has it). The baseline the others are measured against.
// - FP16: weights widened to float32 (F16C), products and sums in float32.
// - INT8 / INT4 (`gemm`): X is quantized per call to uint8 (see quantized_activations.hpp), products
//   accumulate exactly in int32, and scales are applied once per row (INT8) or per group (INT4).
//   INT8 with ActivationScaling::kPerTensor is PyTorch's quantized::linear_dynamic, bit for bit:
//   y = float(acc) * (sa * sw[n]) + bias[n] (golden rule 9).
// - INT8 with float32 activations (`gemm_float_activations`): weights dequantized on the fly, products
//   in float32; slower than `gemm` but without activation rounding, for accuracy-critical callers.
//
// Threads split the rows of W (the output columns); every output is computed by the same code whatever
// the thread count, so results do not depend on it (FP32 excepted: Eigen's blocking follows the size of
// each part, so its results may differ in the last bits).
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "quantkit/kernels/packed_weights.hpp"
#include "quantkit/kernels/quantized_activations.hpp"

namespace qk::kernels {

struct GemmOptions {
  int threads = 1;  // threads that split the rows of W; 1 runs on the caller's thread only
  ActivationScaling activations = ActivationScaling::kPerRow;  // INT8 / INT4 only
  // INT8 / INT4 only: static activation quantization with calibrated parameters instead of dynamic.
  std::optional<StaticActivationParams> static_activations;
};

void gemm(std::span<const float> x, std::int64_t batch, const Fp32Weights& w, std::span<float> y,
          const GemmOptions& options = {}, std::span<const float> bias = {});
void gemm(std::span<const float> x, std::int64_t batch, const Fp16Weights& w, std::span<float> y,
          const GemmOptions& options = {}, std::span<const float> bias = {});
void gemm(std::span<const float> x, std::int64_t batch, const Int8Weights& w, std::span<float> y,
          const GemmOptions& options = {}, std::span<const float> bias = {});
void gemm(std::span<const float> x, std::int64_t batch, const Int4Weights& w, std::span<float> y,
          const GemmOptions& options = {}, std::span<const float> bias = {});
void gemm_float_activations(std::span<const float> x, std::int64_t batch, const Int8Weights& w,
                            std::span<float> y, const GemmOptions& options = {},
                            std::span<const float> bias = {});

// y = W x for one vector x [cols] -> y [rows].
template <class Weights>
void gemv(std::span<const float> x, const Weights& w, std::span<float> y, const GemmOptions& options = {},
          std::span<const float> bias = {}) {
  gemm(x, 1, w, y, options, bias);
}

}  // namespace qk::kernels
