// Scalar reference of the NF4 GEMV: per group, the levels times x summed in float32, then scaled by the
// group's scale once. Any even group size (the SIMD variants take multiples of kNf4SimdGroup).
#include "quantkit/kernels/block_kernels.hpp"

namespace qk::kernels {

namespace {

unsigned nibble(const std::uint8_t* codes, std::int64_t j) { return (codes[j / 2] >> ((j % 2) * 4)) & 0x0Fu; }

}  // namespace

void gemv_nf4_ref(const std::uint8_t* codes, const float* scales, std::int64_t rows, std::int64_t cols,
                  std::int64_t group_size, const float* x, float* y) {
  const std::int64_t groups = cols / group_size;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::uint8_t* row = codes + r * cols / 2;  // cols is even: a row starts on a byte
    float acc = 0;
    for (std::int64_t g = 0; g < groups; ++g) {
      float sum = 0;  // levels times x, scaled by the group's scale once
      for (std::int64_t j = g * group_size; j < (g + 1) * group_size; ++j)
        sum += kNf4Levels[nibble(row, j)] * x[j];
      acc += sum * scales[r * groups + g];
    }
    y[r] = acc;
  }
}

}  // namespace qk::kernels
