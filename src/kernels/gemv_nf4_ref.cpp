// Scalar reference of the NF4 GEMV: per block, the levels times x summed in float32, then scaled by the
// block's absmax once.
#include "quantkit/kernels/block_kernels.hpp"

namespace qk::kernels {

namespace {

unsigned nibble(const std::uint8_t* codes, std::int64_t j) { return (codes[j / 2] >> ((j % 2) * 4)) & 0x0Fu; }

}  // namespace

void gemv_nf4_ref(const BlockNf4* w, std::int64_t rows, std::int64_t cols, const float* x, float* y) {
  const std::int64_t per_row = cols / BlockNf4::kWeights;
  for (std::int64_t r = 0; r < rows; ++r) {
    float acc = 0;
    for (std::int64_t b = 0; b < per_row; ++b) {
      const BlockNf4& blk = w[r * per_row + b];
      float sum = 0;  // levels times x, scaled by the block's absmax once
      for (std::int64_t j = 0; j < BlockNf4::kWeights; ++j)
        sum += kNf4Levels[nibble(blk.codes, j)] * x[b * BlockNf4::kWeights + j];
      acc += sum * blk.absmax;
    }
    y[r] = acc;
  }
}

}  // namespace qk::kernels
