// qk::kernels' tensor-level quantize, dequantize and observer (long float32 runs through the dispatched
// SIMD kernels) against the core's scalar functions: the same parameters, codes and values, bit for bit,
// per tensor, per channel on either axis and per group, for int8 and uint8 codes, on sizes around the
// kernels' minimum run of 32 and on ties.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/quantize_tensor.hpp"

namespace qk {
namespace {

std::vector<float> values(std::int64_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < x.size(); ++i) {
    // Every 7th value lies on a tie of a 1/64 grid: round-half-even must agree too.
    x[i] = i % 7 == 0 ? (std::round(normal(rng) * 64.0f) + 0.5f) / 64.0f : normal(rng) * 3.0f;
  }
  return x;
}

template <class Q>
void expect_same_as_core(const Shape& shape, QuantSpec spec, std::uint32_t seed) {
  std::int64_t n = 1;
  for (const auto d : shape) n *= d;
  const std::vector<float> x = values(n, seed);
  const TensorView<const float> view(x.data(), shape);
  const QuantParams core_params = choose_qparams<float>(view, spec);
  const QuantParams fast_params = kernels::choose_qparams<float>(view, spec);
  ASSERT_EQ(core_params.scale, fast_params.scale);
  ASSERT_EQ(core_params.zero_point, fast_params.zero_point);

  std::vector<Q> core_q(x.size()), fast_q(x.size());
  quantize<float, Q>(view, core_params, core_q);
  kernels::quantize<float, Q>(view, core_params, fast_q);
  ASSERT_EQ(core_q, fast_q);

  std::vector<Q> fused_q(x.size());
  const QuantParams fused_params = kernels::observe_and_quantize<float, Q>(view, spec, fused_q);
  ASSERT_EQ(core_params.scale, fused_params.scale);
  ASSERT_EQ(core_params.zero_point, fused_params.zero_point);
  ASSERT_EQ(core_q, fused_q);

  std::vector<float> core_back(x.size()), fast_back(x.size());
  const TensorView<const Q> codes(core_q.data(), shape);
  dequantize<Q, float>(codes, core_params, core_back);
  kernels::dequantize<Q, float>(codes, core_params, fast_back);
  ASSERT_EQ(0, std::memcmp(core_back.data(), fast_back.data(), x.size() * sizeof(float)));
}

TEST(KernelsQuantizeTensor, SameAsCoreOnAwkwardShapes) {
  const std::uint32_t seed = static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (const std::int64_t cols : {1, 31, 32, 33, 95, 257}) {
    for (const bool is_signed : {true, false}) {
      QuantSpec per_tensor;  // 8 bits; symmetric int8 or affine uint8
      per_tensor.is_signed = is_signed;
      per_tensor.scheme = is_signed ? Scheme::kSymmetric : Scheme::kAffine;
      QuantSpec per_row = per_tensor;
      per_row.scheme = Scheme::kSymmetric;
      per_row.granularity = Granularity::kPerChannel;
      QuantSpec per_column = per_row;
      per_column.axis = 1;
      QuantSpec per_group = per_row;
      per_group.granularity = Granularity::kPerGroup;
      per_group.group_size = 32;
      const Shape shape{5, cols};
      for (const QuantSpec& spec : {per_tensor, per_row, per_column}) {
        if (is_signed) expect_same_as_core<std::int8_t>(shape, spec, seed + static_cast<std::uint32_t>(cols));
        else expect_same_as_core<std::uint8_t>(shape, spec, seed + static_cast<std::uint32_t>(cols));
      }
      if (cols % 32 == 0) {
        if (is_signed) expect_same_as_core<std::int8_t>(shape, per_group, seed);
        else expect_same_as_core<std::uint8_t>(shape, per_group, seed);
      }
    }
  }
}

// observe_and_quantize on tensors whose slot runs are longer than its chunk (per tensor and per row of
// 70,000 columns: observed over three chunks, then quantized), and on a NaN: the same message as
// choose_qparams, naming the count and first index over the whole tensor.
TEST(KernelsQuantizeTensor, ObserveAndQuantizeAcrossChunksAndRejectsNaN) {
  QuantSpec per_row;
  per_row.granularity = Granularity::kPerChannel;
  QuantSpec per_column = per_row;
  per_column.axis = 1;
  for (const QuantSpec& spec : {QuantSpec{}, per_row, per_column})
    expect_same_as_core<std::int8_t>(Shape{3, 70000}, spec, 11);

  std::vector<float> x = values(3 * 40000, 5);
  x[2 * 40000 + 7] = std::nanf("");
  x[2 * 40000 + 9] = INFINITY;
  const TensorView<const float> view(x.data(), {3, 40000});
  std::vector<std::int8_t> q(x.size());
  std::string core_message, fused_message;
  try {
    (void)choose_qparams<float>(view, per_row);
  } catch (const Error& e) {
    core_message = e.what();
  }
  try {
    (void)kernels::observe_and_quantize<float, std::int8_t>(view, per_row, q);
  } catch (const Error& e) {
    fused_message = e.what();
  }
  EXPECT_NE(core_message.find("2 non-finite value(s)"), std::string::npos) << core_message;
  EXPECT_NE(core_message.find("[2, 7]"), std::string::npos) << core_message;
  EXPECT_EQ(core_message, fused_message);
  std::vector<std::int8_t> short_out(3);
  const auto too_short = [&] {
    (void)kernels::observe_and_quantize<float, std::int8_t>(view, per_row, short_out);
  };
  EXPECT_THROW(too_short(), Error);
}

}  // namespace
}  // namespace qk
