// The GEMV-only entry points split over threads (NF4, Q4DQ and ggml's Q8_0 / Q4_0 / Q4_K): the same
// outputs, bit for bit, whatever the thread count, on row counts that leave a short last part.
#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <vector>

#include "quantkit/core/block_formats.hpp"
#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/kernels/block_kernels.hpp"
#include "quantkit/kernels/ggml_gemv.hpp"

namespace qk {
namespace {

std::vector<float> normal(std::size_t n, float stddev, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// call(y, threads) for 1 thread and several; every result equals the one-thread result.
template <class Call>
void expect_thread_independent(std::int64_t rows, Call&& call) {
  std::vector<float> one(static_cast<std::size_t>(rows));
  call(one, 1);
  for (const int threads : {2, 3, 5, 8}) {
    std::vector<float> many(one.size(), -1.0f);
    call(many, threads);
    ASSERT_EQ(many, one) << threads << " threads, " << rows << " rows";
  }
}

TEST(GemvThreads, Nf4AndQ4dqDoNotDependOnTheThreadCount) {
  std::mt19937 rng(7);
  for (const std::int64_t rows : {1, 17, 50, 131}) {
    const std::int64_t cols = 512;
    const auto w = normal(static_cast<std::size_t>(rows * cols), 0.05f, rng);
    const auto x = normal(static_cast<std::size_t>(cols), 1.0f, rng);
    const Nf4Weights nf4 = quantize_nf4(w, cols);
    expect_thread_independent(rows,
                              [&](std::vector<float>& y, int t) { kernels::gemv(nf4.view(), x, y, t); });
    const std::vector<BlockQ4DQ> q4dq = quantize_q4dq(w);
    expect_thread_independent(rows, [&](std::vector<float>& y, int t) {
      kernels::gemv(std::span<const BlockQ4DQ>(q4dq), rows, cols, x, y, t);
    });
  }
}

TEST(GemvThreads, GgmlBlocksDoNotDependOnTheThreadCount) {
  std::mt19937 rng(8);
  for (const ggml::Type type : {ggml::Type::kQ8_0, ggml::Type::kQ4_0, ggml::Type::kQ4_K}) {
    for (const std::int64_t rows : {1, 17, 131}) {
      const std::int64_t cols = 512;
      const std::int64_t row = ggml::row_bytes(type, cols);
      const auto w = normal(static_cast<std::size_t>(rows * cols), 0.05f, rng);
      std::vector<std::byte> bytes(static_cast<std::size_t>(rows * row));
      for (std::int64_t r = 0; r < rows; ++r)
        ggml::quantize_row(type, w.data() + r * cols, cols, bytes.data() + r * row);
      const auto x = normal(static_cast<std::size_t>(cols), 1.0f, rng);
      expect_thread_independent(
          rows, [&](std::vector<float>& y, int t) { kernels::gemv_ggml(type, bytes, rows, cols, x, y, t); });
    }
  }
}

}  // namespace
}  // namespace qk
