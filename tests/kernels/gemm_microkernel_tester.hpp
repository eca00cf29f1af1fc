// The GEMM family's tester (XNNPACK's gemm-microkernel-tester.h is the model): runs one registered
// variant and the family's scalar reference on random data over the shapes its tile makes awkward, on
// the whole row range of W and on a part of it (as a thread gets), and checks the result exactly for
// integer accumulation and within a float-rounding bound otherwise; outputs outside the part must stay
// untouched.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "quantkit/kernels/gemm_kernels.hpp"
#include "quantkit/kernels/packed_weights.hpp"
#include "variant_test.hpp"

namespace qk::kernels::test {

struct GemmShape {
  std::int64_t batch, rows, cols;
};

// Fixed shapes (1, odd, around the 8/32/64/128-column steps and the 4/8-row tiles, and larger ones),
// then every combination of batch and rows in tile_sizes(tile.batch / tile.rows) with cols in
// tile_sizes(tile.elements) from 1 up (a row has at least one column).
inline std::vector<GemmShape> gemm_shapes(const KernelTile& tile) {
  std::vector<GemmShape> shapes = {{1, 1, 1},    {1, 3, 7},    {2, 5, 31},   {1, 4, 32},    {3, 9, 33},
                                   {1, 8, 63},   {5, 17, 64},  {2, 16, 65},  {1, 7, 100},   {4, 12, 127},
                                   {1, 33, 128}, {6, 20, 129}, {3, 40, 257}, {1, 64, 1000}, {64, 24, 300}};
  for (const std::int64_t batch : tile_sizes(tile.batch))
    for (const std::int64_t rows : tile_sizes(tile.rows))
      for (const std::int64_t cols : tile_sizes(tile.elements, 1)) shapes.push_back({batch, rows, cols});
  return shapes;
}

inline std::vector<float> normal_values(std::size_t n, float stddev, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Float sums in any order differ from the reference's by at most gamma_n * Σ|terms| with
// gamma_n = n*u / (1 - n*u), u = 2^-24, for each of the two; twice that bounds their difference.
inline double float_sum_bound(std::int64_t terms, double magnitude) {
  const double u = std::ldexp(1.0, -24);
  const double n = static_cast<double>(terms) + 2;  // + the horizontal sum and the scale
  return 2.0 * n * u / (1.0 - n * u) * magnitude + 1e-30;
}

// Σ_k |x_k * w_k| for each output: the magnitude that bounds float rounding.
inline std::vector<double> magnitudes(const std::vector<float>& x, const std::vector<float>& w,
                                      const GemmShape& s) {
  std::vector<double> m(static_cast<std::size_t>(s.batch * s.rows), 0.0);
  for (std::int64_t b = 0; b < s.batch; ++b)
    for (std::int64_t o = 0; o < s.rows; ++o)
      for (std::int64_t k = 0; k < s.cols; ++k)
        m[static_cast<std::size_t>(b * s.rows + o)] +=
            std::fabs(static_cast<double>(x[static_cast<std::size_t>(b * s.cols + k)]) *
                      w[static_cast<std::size_t>(o * s.cols + k)]);
  return m;
}

inline std::vector<float> pad_rows(const std::vector<float>& x, std::int64_t batch, std::int64_t cols,
                                   std::int64_t stride) {
  std::vector<float> out(static_cast<std::size_t>(batch * stride), 0.0f);
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t k = 0; k < cols; ++k)
      out[static_cast<std::size_t>(b * stride + k)] = x[static_cast<std::size_t>(b * cols + k)];
  return out;
}

// Runs `run(row_begin, row_end, y)` on the whole row range and on [rows / 3, rows), and checks each
// output o of the range with check(index, got), where the outputs outside the range must keep the
// sentinel the buffer was filled with.
template <class Run, class Check>
void run_row_ranges(const GemmShape& s, Run&& run, Check&& check) {
  const float sentinel = -12345.5f;
  for (const std::int64_t begin : {std::int64_t{0}, s.rows / 3}) {
    std::vector<float> y(static_cast<std::size_t>(s.batch * s.rows), sentinel);
    run(begin, s.rows, y.data());
    for (std::int64_t b = 0; b < s.batch; ++b) {
      for (std::int64_t o = 0; o < s.rows; ++o) {
        const auto i = static_cast<std::size_t>(b * s.rows + o);
        if (o < begin) {
          ASSERT_EQ(y[i], sentinel) << "output " << i << " outside rows [" << begin << ", " << s.rows << ")";
        } else {
          check(i, y[i]);
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
    }
  }
}

// FP32, FP16 and INT8-float variants: random X (padded to the weights' stride where they have one) and
// W, the variant within float_sum_bound of the reference on every shape and row range.
template <class Weights, class Fn>
void expect_float_variant_close(const KernelVariant<Fn>& v, Fn ref,
                                Weights (*pack)(std::span<const float>, std::int64_t, std::int64_t)) {
  std::mt19937 rng(random_seed());
  for (const GemmShape& s : gemm_shapes(v.tile)) {
    SCOPED_TRACE(::testing::Message() << "batch " << s.batch << " rows " << s.rows << " cols " << s.cols
                                      << " seed " << random_seed());
    const auto x = normal_values(static_cast<std::size_t>(s.batch * s.cols), 1.0f, rng);
    const auto wf = normal_values(static_cast<std::size_t>(s.rows * s.cols), 0.1f, rng);
    const Weights w = pack(wf, s.rows, s.cols);
    std::vector<float> xp = x, unpacked = wf;  // FP32: used as they are
    if constexpr (requires { w.stride; }) {
      xp = pad_rows(x, s.batch, s.cols, w.stride);
      unpacked = unpack_to_float(w);
    }
    std::vector<float> want(static_cast<std::size_t>(s.batch * s.rows));
    ref(xp.data(), s.batch, w, 0, s.rows, want.data());
    const auto mag = magnitudes(x, unpacked, s);
    run_row_ranges(
        s, [&](std::int64_t r0, std::int64_t r1, float* y) { v.fn(xp.data(), s.batch, w, r0, r1, y); },
        [&](std::size_t i, float got) {
          ASSERT_LE(std::fabs(got - want[i]), float_sum_bound(s.cols, mag[i])) << v.name << " output " << i;
        });
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace qk::kernels::test
