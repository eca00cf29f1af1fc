// Scalar reference of the double-quantized INT4 GEMV: per group of 32, the codes times x summed in
// float32, then scaled by the group's scale once.
#include "quantkit/kernels/block_kernels.hpp"

namespace qk::kernels {

namespace {

unsigned nibble(const std::uint8_t* codes, std::int64_t j) { return (codes[j / 2] >> ((j % 2) * 4)) & 0x0Fu; }

}  // namespace

void gemv_q4dq_ref(const BlockQ4DQ* w, std::int64_t rows, std::int64_t cols, const float* x, float* y) {
  const std::int64_t per_row = cols / BlockQ4DQ::kWeights;
  for (std::int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (std::int64_t b = 0; b < per_row; ++b) {
      const BlockQ4DQ& blk = w[r * per_row + b];
      for (std::int64_t g = 0; g < BlockQ4DQ::kWeights / BlockQ4DQ::kGroup; ++g) {
        float sum = 0;  // codes times x, scaled by the group's scale once
        for (std::int64_t j = 0; j < BlockQ4DQ::kGroup; ++j) {
          const std::int64_t k = g * BlockQ4DQ::kGroup + j;
          sum +=
              static_cast<float>(static_cast<int>(nibble(blk.codes, k)) - 8) * x[b * BlockQ4DQ::kWeights + k];
        }
        acc += sum * (static_cast<float>(blk.scales[g]) * blk.super_scale);
      }
    }
    y[r] = acc;
  }
}

}  // namespace qk::kernels
