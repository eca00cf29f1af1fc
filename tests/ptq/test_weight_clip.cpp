// mse_clipped_params (ptq/weight_clip.hpp): per slot never worse than min/max on the weight, strictly
// better on a heavy-tailed channel, the plain min/max where clipping cannot help (uniform data), and the
// same parameters whatever the other channels hold.
#include <gtest/gtest.h>

#include <random>

#include "quantkit/ptq/weight_clip.hpp"

namespace {

double channel_sse(const std::vector<float>& x, const qk::QuantParams& p, const qk::Shape& shape,
                   std::int64_t c) {
  std::vector<std::int8_t> q(x.size());
  qk::quantize<float, std::int8_t>(qk::TensorView<const float>(x.data(), shape), p,
                                   std::span<std::int8_t>(q));
  std::vector<float> y(x.size());
  qk::dequantize<std::int8_t, float>(qk::TensorView<const std::int8_t>(q.data(), shape), p,
                                     std::span<float>(y));
  const std::int64_t inner = shape[1];
  double sse = 0;
  for (std::int64_t i = c * inner; i < (c + 1) * inner; ++i)
    sse += (double{x[i]} - y[i]) * (double{x[i]} - y[i]);
  return sse;
}

TEST(WeightClip, NeverWorseThanMinMaxAndBetterOnHeavyTails) {
  std::mt19937 rng(5);
  const qk::Shape shape = {3, 4096};
  std::vector<float> x(3 * 4096);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::student_t_distribution<float> heavy(2);
  for (std::int64_t i = 0; i < 4096; ++i) {
    x[i] = normal(rng);
    x[4096 + i] = uniform(rng);
    x[8192 + i] = heavy(rng);
  }
  qk::QuantSpec spec;
  spec.granularity = qk::Granularity::kPerChannel;
  const qk::TensorView<const float> view(x.data(), shape);
  const qk::QuantParams plain = qk::choose_qparams<float>(view, spec);
  const qk::QuantParams clipped = qk::mse_clipped_params(view, spec);
  for (std::int64_t c = 0; c < 3; ++c)
    EXPECT_LE(channel_sse(x, clipped, shape, c), channel_sse(x, plain, shape, c));
  // t(2): long tails, some of which cost less clipped than they cost every other value in resolution.
  EXPECT_LT(channel_sse(x, clipped, shape, 2), 0.99 * channel_sse(x, plain, shape, 2));
  EXPECT_LT(clipped.scale[2], plain.scale[2]);
  EXPECT_GT(clipped.scale[1], 0.9f * plain.scale[1]);  // uniform: little or nothing to clip
  // A slot's choice does not depend on the other slots.
  const std::vector<float> alone(x.begin() + 8192, x.end());
  const qk::QuantParams one =
      qk::mse_clipped_params(qk::TensorView<const float>(alone.data(), {1, 4096}), spec);
  EXPECT_EQ(one.scale[0], clipped.scale[2]);
  EXPECT_THROW(qk::mse_clipped_params(view, spec, {0, 0.5}), qk::Error);
}

}  // namespace
