// QAT pieces: the FakeQuantize module (observer, freeze after N steps, straight-through backward) and the
// LSQ module, with finite-difference checks of the learnable scale gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "quantkit/core/quantize.hpp"
#include "quantkit/qat/fake_quantize_module.hpp"
#include "quantkit/qat/learnable_fake_quant.hpp"

namespace qk {
namespace {

std::vector<float> random_values(std::size_t n, float scale, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

QuantSpec per_channel_spec(int bits) {
  QuantSpec s;
  s.bits = bits;
  s.is_signed = true;
  s.scheme = Scheme::kSymmetric;
  s.granularity = Granularity::kPerChannel;
  s.axis = 0;
  return s;
}

TEST(FakeQuantizeModule, ForwardIsRuleSixWithTheObserversParameters) {
  for (const bool per_channel : {false, true}) {
    FakeQuantizeConfig c;
    c.spec = per_channel ? per_channel_spec(4) : QuantSpec{};
    c.observer = QatObserver::kMinMax;
    FakeQuantize fq(c);
    const auto x = random_values(6 * 10, 1.0f, 1);
    const TensorView<const float> view(x.data(), {6, 10});
    std::vector<float> y(x.size()), want(x.size());
    std::vector<std::uint8_t> mask(x.size());
    fq.forward(view, y);
    const QuantParams p = choose_qparams<float>(view, c.spec);
    fake_quantize<float>(view, p, want, mask);
    EXPECT_EQ(y, want);
    EXPECT_EQ(fq.params().scale, p.scale);
    // Backward: dy passes exactly where rule 6's mask passes.
    const auto dy = random_values(x.size(), 1.0f, 2);
    std::vector<float> dx(x.size());
    fq.backward(dy, dx);
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(dx[i], mask[i] ? dy[i] : 0.0f);
  }
}

TEST(FakeQuantizeModule, GradientIsZeroOutsideTheFrozenRange) {
  FakeQuantizeConfig c;
  c.spec.bits = 8;
  c.observer = QatObserver::kMinMax;
  c.observer_steps = 1;
  FakeQuantize fq(c);
  std::vector<float> x = {-1.0f, 0.5f, 1.0f}, y(3), dx(3);
  fq.forward(TensorView<const float>(x.data(), {3}), y);  // observes [-1, 1]
  x = {-3.0f, 0.25f, 3.0f};                               // beyond the frozen range
  fq.forward(TensorView<const float>(x.data(), {3}), y);
  const std::vector<float> dy = {1.0f, 1.0f, 1.0f};
  fq.backward(dy, dx);
  EXPECT_EQ(dx, (std::vector<float>{0.0f, 1.0f, 0.0f}));
  EXPECT_FLOAT_EQ(y[2], 127 * fq.params().scale[0]);  // clamped to qmax
}

TEST(FakeQuantizeModule, ObserverFreezesAfterNSteps) {
  FakeQuantizeConfig c;
  c.spec = per_channel_spec(8);
  c.observer = QatObserver::kMovingAverage;
  c.averaging_constant = 0.5f;
  c.observer_steps = 3;
  FakeQuantize fq(c);
  std::vector<float> y(8);
  std::vector<float> scales;
  for (int step = 0; step < 6; ++step) {
    const float amax = static_cast<float>(1 << step);  // the range grows every step
    std::vector<float> x = {-amax, amax, 0, 0, amax / 2, -amax / 2, 0, 0};
    EXPECT_EQ(fq.observer_enabled(), step < 3);
    fq.forward(TensorView<const float>(x.data(), {2, 4}), y);
    scales.push_back(fq.params().scale[0]);
  }
  EXPECT_LT(scales[0], scales[1]);
  EXPECT_LT(scales[1], scales[2]);
  EXPECT_EQ(scales[2], scales[3]);  // frozen from the fourth step on
  EXPECT_EQ(scales[3], scales[5]);
  // Moving average with c = 0.5 (rule 3): maxima 1, 2, 4 -> 1, 1.5, 2.75; scale = 2.75 / 127.5.
  EXPECT_EQ(scales[2], 2.75f / 127.5f);
  EXPECT_EQ(fq.steps(), 6);
}

TEST(FakeQuantizeModule, DisabledFakeQuantIsTheIdentityAndAFrozenEmptyObserverIsAnError) {
  FakeQuantizeConfig c;
  c.fake_quant_enabled = false;
  FakeQuantize fq(c);
  std::vector<float> x = {0.1234f, -7.5f}, y(2), dx(2);
  fq.forward(TensorView<const float>(x.data(), {2}), y);
  EXPECT_EQ(y, x);
  fq.backward(std::vector<float>{2.0f, 3.0f}, dx);
  EXPECT_EQ(dx, (std::vector<float>{2.0f, 3.0f}));

  FakeQuantizeConfig frozen;
  frozen.observer_steps = 0;
  FakeQuantize never(frozen);
  EXPECT_THROW(never.forward(TensorView<const float>(x.data(), {2}), y), Error);
  std::vector<float> bad = {1.0f, NAN};
  FakeQuantize nan_input(FakeQuantizeConfig{});
  EXPECT_THROW(nan_input.forward(TensorView<const float>(bad.data(), {2}), y), Error);
  EXPECT_THROW(nan_input.backward(std::vector<float>(5), dx), Error);
}

TEST(FakeQuantizeModule, AFailedForwardLeavesTheModuleAsItWas) {
  FakeQuantizeConfig c;
  c.observer = QatObserver::kMinMax;
  FakeQuantize fq(c);
  std::vector<float> x = {-1.0f, 0.5f, 1.0f}, y(3), dx(3);
  fq.forward(TensorView<const float>(x.data(), {3}), y);
  const std::vector<std::uint8_t> mask(fq.mask().begin(), fq.mask().end());
  const float scale = fq.params().scale[0];
  std::vector<float> bad = {1.0f, NAN, 0.0f, 2.0f};
  std::vector<float> y4(4);
  EXPECT_THROW(fq.forward(TensorView<const float>(bad.data(), {4}), y4), Error);
  EXPECT_EQ(fq.steps(), 1);
  EXPECT_EQ(fq.params().scale[0], scale);
  EXPECT_EQ(std::vector<std::uint8_t>(fq.mask().begin(), fq.mask().end()), mask);
  std::vector<float> dx4(4);
  EXPECT_THROW(fq.backward(std::vector<float>(4, 1.0f), dx4), Error);  // still the 3 elements of the last call
  fq.backward(std::vector<float>(3, 1.0f), dx);
  EXPECT_EQ(dx, (std::vector<float>{1.0f, 1.0f, 1.0f}));
}

// The loss whose derivative LSQ's scale gradient is: sum(dy * y(s)) with rint treated as the identity
// around the current point (straight-through), i.e. each inside element's rounding offset frozen at s0.
double ste_surrogate_loss(const std::vector<float>& x, const std::vector<float>& dy, double s, double s0,
                          double z, QRange r) {
  double loss = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v0 = x[i] / s0 + z;
    const double code0 = std::nearbyint(v0);
    double y;
    if (code0 < r.min) {
      y = (r.min - z) * s;
    } else if (code0 > r.max) {
      y = (r.max - z) * s;
    } else {
      const double offset = code0 - v0;  // frozen rounding offset
      y = (x[i] / s + z + offset - z) * s;
    }
    loss += dy[i] * y;
  }
  return loss;
}

TEST(LearnableFakeQuantize, ScaleGradientMatchesFiniteDifferencesOfTheSteSurrogate) {
  const QRange r{-8, 7};
  for (const unsigned seed : {3u, 4u, 5u}) {
    // Values spread beyond the range so that both the inside and the clamped branches are exercised.
    const auto x = random_values(200, 1.0f, seed);
    const auto dy = random_values(200, 1.0f, seed + 10);
    const float s = 0.21f;
    const std::vector<float> scale = {s}, zero = {0.0f};
    const ChannelLayout layout{1, 200, 200};
    const auto g = fake_quantize_learnable_backward(x, dy, layout, scale, zero, r, 1.0f, false);
    const double h = 1e-4;
    const double fd =
        (ste_surrogate_loss(x, dy, s + h, s, 0, r) - ste_surrogate_loss(x, dy, s - h, s, 0, r)) / (2 * h);
    // float32 per-element terms summed over 200 elements: relative 1e-4 covers the rounding.
    EXPECT_NEAR(g.dscale[0], fd, 1e-4 * std::max(1.0, std::abs(fd))) << "seed " << seed;
  }
}

TEST(LearnableFakeQuantize, ScaleGradientOfSaturatedValuesMatchesTrueFiniteDifferences) {
  // Every value clamps, so y(s) = (qmax - z) s or (qmin - z) s exactly: the true derivative exists and
  // LSQ's gradient must equal it (per channel, with the grad factor applied).
  const QRange r{-2, 1};
  const std::vector<float> x = {5, -6, 7, -9, 3.5f, 4, -4, 8};  // two channels of four
  const std::vector<float> dy = {0.5f, -1, 2, 0.25f, 1, 1, -3, 0.5f};
  const std::vector<float> scale = {0.5f, 0.25f}, zero = {0.0f, 0.0f};
  const ChannelLayout layout{2, 4, 8};
  const float factor = lsq_grad_factor(4, r);
  const auto g = fake_quantize_learnable_backward(x, dy, layout, scale, zero, r, factor, true);
  for (std::size_t c = 0; c < 2; ++c) {
    auto loss = [&](float sc) {
      std::vector<float> sv = scale;
      sv[c] = sc;
      std::vector<float> y(8);
      fake_quantize_learnable_forward(x, layout, sv, zero, r, y);
      double l = 0;
      for (std::size_t i = 0; i < 8; ++i) l += dy[i] * y[i];
      return l;
    };
    const double h = 1e-3;
    const double fd = (loss(scale[c] + h) - loss(scale[c] - h)) / (2 * h);
    EXPECT_NEAR(g.dscale[c], fd * factor, 1e-4) << "channel " << c;
  }
}

TEST(LearnableFakeQuantize, ModuleMatchesTheRuleSevenFunctionsAndTrains) {
  const QuantSpec spec = per_channel_spec(3);
  LearnableFakeQuantize fq(spec);
  const auto w = random_values(4 * 32, 0.5f, 7);
  const TensorView<const float> view(w.data(), {4, 32});
  std::vector<float> y(w.size()), dx(w.size());
  fq.forward(view, y);  // initialises from the min/max observer
  const QuantParams p = choose_qparams<float>(view, spec);
  for (std::size_t c = 0; c < 4; ++c) EXPECT_EQ(fq.scale()[c], p.scale[c]);
  std::vector<float> want(w.size());
  fake_quantize<float>(view, p, want);
  EXPECT_EQ(y, want);

  // Minimising sum((y - w)^2) by the scale alone must lower the error (LSQ's purpose).
  auto sq_error = [&] {
    fq.forward(view, y);
    double e = 0;
    for (std::size_t i = 0; i < w.size(); ++i) e += (y[i] - w[i]) * (y[i] - w[i]);
    return e;
  };
  const double before = sq_error();
  for (int step = 0; step < 200; ++step) {
    sq_error();
    std::vector<float> dy(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) dy[i] = 2 * (y[i] - w[i]);
    fq.backward(dy, dx);
    fq.sgd_step(0.01f);
  }
  EXPECT_LT(sq_error(), before * 0.9);
}

}  // namespace
}  // namespace qk
