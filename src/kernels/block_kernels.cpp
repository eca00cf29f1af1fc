// The dispatched NF4 / Q4DQ dequantize and GEMV (chosen once, from registries.cpp), with their checks.
#include "quantkit/kernels/block_kernels.hpp"

#include <string>

#include "quantkit/core/error.hpp"
#include "quantkit/kernels/parallel.hpp"

namespace qk::kernels {

namespace {

// Rows per thread part of a GEMV: enough that a part's start-up is small against its weights.
constexpr std::int64_t kGemvRowGrain = 16;

void check_gemv(std::int64_t rows, std::int64_t cols, std::int64_t block, std::size_t blocks,
                const char* what) {
  if (rows < 0 || cols < 0 || cols % block != 0)
    throw Error(std::string(what) + ": " + std::to_string(cols) +
                " columns are not a multiple of the block of " + std::to_string(block));
  if (static_cast<std::int64_t>(blocks) != rows * (cols / block))
    throw Error(std::string(what) + ": " + std::to_string(blocks) + " blocks for a " + std::to_string(rows) +
                " x " + std::to_string(cols) + " matrix");
}

}  // namespace

std::vector<float> dequantize(const Nf4View& w) {
  check_nf4(w, "nf4 dequantize");
  static const DequantizeNf4Fn simd = select(dequantize_nf4_variants());
  const DequantizeNf4Fn fn = w.group_size % kNf4SimdGroup == 0 ? simd : dequantize_nf4_ref;
  std::vector<float> out(static_cast<std::size_t>(w.rows * w.cols));
  fn(w.codes.data(), w.scales.data(), w.rows * w.cols, w.group_size, out.data());
  return out;
}
std::vector<float> dequantize(std::span<const BlockQ4DQ> blocks) {
  static const DequantizeQ4dqFn fn = select(dequantize_q4dq_variants());
  std::vector<float> out(blocks.size() * BlockQ4DQ::kWeights);
  fn(blocks.data(), static_cast<std::int64_t>(out.size()), out.data());
  return out;
}
void gemv(const Nf4View& w, std::span<const float> x, std::span<float> y, int threads) {
  check_nf4(w, "nf4 gemv");
  if (static_cast<std::int64_t>(x.size()) != w.cols || static_cast<std::int64_t>(y.size()) != w.rows)
    throw Error("nf4 gemv: x has " + std::to_string(x.size()) + " and y " + std::to_string(y.size()) +
                " values for a " + std::to_string(w.rows) + " x " + std::to_string(w.cols) + " matrix");
  static const GemvNf4Fn simd = select(gemv_nf4_variants());
  const GemvNf4Fn fn = w.group_size % kNf4SimdGroup == 0 ? simd : gemv_nf4_ref;
  const std::int64_t groups = w.cols / w.group_size;
  parallel_for(w.rows, threads, kGemvRowGrain, [&](std::int64_t r0, std::int64_t r1) {
    fn(w.codes.data() + r0 * (w.cols / 2), w.scales.data() + r0 * groups, r1 - r0, w.cols, w.group_size,
       x.data(), y.data() + r0);
  });
}
void gemv(std::span<const BlockQ4DQ> w, std::int64_t rows, std::int64_t cols, std::span<const float> x,
          std::span<float> y, int threads) {
  check_gemv(rows, cols, BlockQ4DQ::kWeights, w.size(), "q4dq gemv");
  if (static_cast<std::int64_t>(x.size()) != cols || static_cast<std::int64_t>(y.size()) != rows)
    throw Error("q4dq gemv: x or y does not match the matrix");
  static const GemvQ4dqFn fn = select(gemv_q4dq_variants());
  const std::int64_t per_row = cols / BlockQ4DQ::kWeights;
  parallel_for(rows, threads, kGemvRowGrain, [&](std::int64_t r0, std::int64_t r1) {
    fn(w.data() + r0 * per_row, r1 - r0, cols, x.data(), y.data() + r0);
  });
}

}  // namespace qk::kernels
