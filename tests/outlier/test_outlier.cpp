// Outlier-aware weight methods: activation statistics and the Hessian, GPTQ against a straightforward
// (unbatched, double precision, explicit inverse) implementation written here, AWQ's search, the
// importance-weighted scale search, SmoothQuant's W8A8 error on outlier channels, and bad input.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "outlier/eigen_matrix.hpp"
#include "outlier/weight_grid.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/outlier/activation_stats.hpp"
#include "quantkit/outlier/weight_methods.hpp"

namespace qk {
namespace {

unsigned seed() { return static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed()); }

std::vector<float> gaussian(std::size_t n, float sd, std::mt19937& gen) {
  std::normal_distribution<float> d(0, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

// Activations with correlated channels and a few large ones, as real layer inputs have.
std::vector<float> activations(std::int64_t rows, std::int64_t in, std::mt19937& gen, float outlier = 1.0f) {
  std::vector<float> base = gaussian(static_cast<std::size_t>(rows * 4), 1.0f, gen);
  std::vector<float> noise = gaussian(static_cast<std::size_t>(rows * in), 0.5f, gen);
  std::vector<float> x(static_cast<std::size_t>(rows * in));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < in; ++c) {
      const auto k = static_cast<std::size_t>(r * in + c);
      x[k] = base[static_cast<std::size_t>(r * 4 + c % 4)] + noise[k];
      if (c % 16 == 3) x[k] *= outlier;
    }
  return x;
}

// The output error recomputed from the activations themselves, independent of the library's Hessian:
// the sum over rows x of ||(W - W_q) x||^2, in double.
double recomputed_output_error(const std::vector<float>& w, const std::vector<float>& wq, std::int64_t out,
                               std::int64_t in, const std::vector<float>& x) {
  const std::int64_t rows = static_cast<std::int64_t>(x.size()) / in;
  double sum = 0;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      double e = 0;
      for (std::int64_t c = 0; c < in; ++c) e += (double(w[o * in + c]) - wq[o * in + c]) * x[r * in + c];
      sum += e * e;
    }
  return sum;
}

TEST(ActivationStats, OneBatchAndFiftyBatchesAgree) {
  std::mt19937 gen(seed());
  const std::int64_t rows = 500, in = 24;
  const auto x = activations(rows, in, gen, 10.0f);
  ActivationStats one(in), many(in);
  one.add(x, rows);
  for (std::int64_t b = 0; b < 50; ++b)
    many.add(std::span<const float>(x).subspan(static_cast<std::size_t>(b * 10 * in),
                                               static_cast<std::size_t>(10 * in)),
             10);
  EXPECT_EQ(one.rows(), many.rows());
  const Eigen::MatrixXd h1 = detail::eigen_view(one.hessian()), h50 = detail::eigen_view(many.hessian());
  EXPECT_LE((h1 - h50).cwiseAbs().maxCoeff(), 1e-12 * h1.cwiseAbs().maxCoeff());  // double sums, reordered
  // H = 2 X^T X / n, checked on one entry by hand.
  double h03 = 0;
  for (std::int64_t r = 0; r < rows; ++r) h03 += double(x[r * in]) * x[r * in + 3];
  EXPECT_NEAR(h1(0, 3), 2 * h03 / rows, 1e-12 * std::fabs(h03));
  EXPECT_EQ(one.max_abs(), many.max_abs());
  for (std::size_t c = 0; c < 24; ++c) EXPECT_NEAR(one.mean_abs()[c], many.mean_abs()[c], 1e-12);
  ActivationStats merged(in);
  merged.merge(many);
  EXPECT_LE((detail::eigen_view(merged.hessian()) - h1).cwiseAbs().maxCoeff(),
            1e-12 * h1.cwiseAbs().maxCoeff());
}

TEST(ActivationStats, BadBatchesAreRejectedAndChangeNothing) {
  ActivationStats s(3);
  std::vector<float> x = {1, 2, 3, 4, 5, 6};
  s.add(x, 2);
  x[4] = NAN;
  try {
    s.add(x, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 3, column 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(s.add(std::vector<float>(5, 1.0f), 2), Error);  // width mismatch
  EXPECT_EQ(s.rows(), 2);
  EXPECT_EQ(s.max_abs()[1], 5.0);
  EXPECT_THROW(ActivationStats(2).hessian(), Error);  // no rows
}

// GPTQ as the paper states it: explicit inverse of the dampened Hessian, its upper Cholesky factor, every
// column's error applied to every later column at once, all in double.
QuantizedLinear straightforward_gptq(const std::vector<float>& w, std::int64_t out, std::int64_t in,
                                     Eigen::MatrixXd h, const QuantSpec& spec, double damp, bool act_order) {
  const std::int64_t group = spec.granularity == Granularity::kPerGroup ? spec.group_size : 0;
  Eigen::MatrixXd wm(out, in);
  for (std::int64_t r = 0; r < out; ++r)
    for (std::int64_t c = 0; c < in; ++c) wm(r, c) = w[r * in + c];
  std::vector<std::int64_t> perm(in);
  for (std::int64_t i = 0; i < in; ++i) perm[i] = i;
  if (act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](auto a, auto b) { return h(a, a) > h(b, b); });
  const std::int64_t ng = group ? in / group : 1;
  std::vector<detail::SlotGrid> grids(out * ng);
  auto fill = [&](std::int64_t r, std::int64_t g) {
    const std::int64_t width = group ? group : in;
    std::vector<float> slot(width);
    for (std::int64_t j = 0; j < width; ++j) slot[j] = static_cast<float>(wm(r, g * width + j));
    grids[r * ng + g] = detail::slot_grid(slot, spec);
  };
  if (!group || act_order)
    for (std::int64_t r = 0; r < out; ++r)
      for (std::int64_t g = 0; g < ng; ++g) fill(r, g);
  Eigen::MatrixXd hp(in, in);
  for (std::int64_t i = 0; i < in; ++i)
    for (std::int64_t j = 0; j < in; ++j) hp(i, j) = h(perm[i], perm[j]);
  hp.diagonal().array() += damp * hp.diagonal().mean();
  const Eigen::MatrixXd hinv = hp.inverse();
  const Eigen::MatrixXd u = Eigen::MatrixXd(hinv.llt().matrixU());
  QuantizedLinear q;
  q.codes.assign(out * in, 0);
  q.dequantized.assign(out * in, 0);
  const QRange range = spec.range();
  for (std::int64_t col = 0; col < in; ++col) {
    const std::int64_t orig = perm[col];
    if (group && !act_order && orig % group == 0)
      for (std::int64_t r = 0; r < out; ++r) fill(r, orig / group);
    for (std::int64_t r = 0; r < out; ++r) {
      const auto& g = grids[r * ng + (group ? orig / group : 0)];
      const std::int8_t code = detail::quantize_to_grid(static_cast<float>(wm(r, orig)), g, range);
      const double back = dequantize_value<float>(code, g.scale, g.zero_point);
      q.codes[r * in + orig] = code;
      q.dequantized[r * in + orig] = static_cast<float>(back);
      const double err = (wm(r, orig) - back) / u(col, col);
      for (std::int64_t later = col + 1; later < in; ++later) wm(r, perm[later]) -= err * u(col, later);
    }
  }
  return q;
}

TEST(Gptq, MatchesTheStraightforwardAlgorithm) {
  std::mt19937 gen(seed());
  SCOPED_TRACE("seed " + std::to_string(seed()));
  const std::int64_t out = 24, in = 64, rows = 400;
  const auto w = gaussian(out * in, 0.2f, gen);
  ActivationStats stats(in);
  const auto x = activations(rows, in, gen, 4.0f);
  stats.add(x, rows);
  for (const std::int64_t group : {0, 16}) {
    for (const bool act_order : {false, true}) {
      WeightQuantOptions o;
      o.bits = 3;
      o.group_size = group;
      o.act_order = act_order;
      o.block_size = 8;  // several lazy blocks; with groups of 16 the block widens to 16 (whole groups)
      const QuantizedLinear fast = quantize_linear(w, out, in, &stats, WeightMethod::kGptq, o);
      const QuantizedLinear slow = straightforward_gptq(w, out, in, detail::eigen_view(stats.hessian()),
                                                        weight_method_spec(o, in), o.damp, act_order);
      // Float32 versus double and a different summation order may flip a code at a rounding tie and
      // its consequences; nearly all codes agree and the output errors agree closely.
      std::int64_t same = 0;
      for (std::size_t k = 0; k < w.size(); ++k) same += fast.codes[k] == slow.codes[k];
      EXPECT_GE(same, static_cast<std::int64_t>(w.size() * 0.98))
          << "group " << group << " act_order " << act_order;
      const double e_slow = output_error(w, slow.dequantized, out, in, stats.hessian());
      EXPECT_NEAR(fast.output_error, e_slow, 0.02 * e_slow)
          << "group " << group << " act_order " << act_order;
      // And GPTQ's purpose: less output error than RTN.
      const QuantizedLinear rtn = quantize_linear(w, out, in, &stats, WeightMethod::kRtn, o);
      const double e_gptq = recomputed_output_error(w, fast.dequantized, out, in, x);
      const double e_rtn = recomputed_output_error(w, rtn.dequantized, out, in, x);
      EXPECT_LT(e_gptq, e_rtn) << "group " << group << " act_order " << act_order;
      // What the library reports about itself is the same quantity in GPTQ's units: its Hessian is
      // H = 2 X^T X / rows, so d H d^T summed over outputs is 2 / rows times the sum of squares above.
      EXPECT_NEAR(fast.output_error, e_gptq * 2 / rows, 1e-3 * e_gptq * 2 / rows);
      EXPECT_NEAR(rtn.output_error, e_rtn * 2 / rows, 1e-3 * e_rtn * 2 / rows);
    }
  }
}

TEST(Gptq, InputChannelsNeverActivatedKeepTheirWeights) {
  std::mt19937 gen(seed());
  const std::int64_t out = 8, in = 32, rows = 200;
  auto x = activations(rows, in, gen);
  for (std::int64_t r = 0; r < rows; ++r) x[r * in + 5] = 0.0f;  // channel 5 never active
  ActivationStats stats(in);
  stats.add(x, rows);
  const auto w = gaussian(out * in, 0.3f, gen);
  WeightQuantOptions o;
  o.bits = 4;
  const QuantizedLinear q = quantize_linear(w, out, in, &stats, WeightMethod::kGptq, o);
  for (std::int64_t r = 0; r < out; ++r) {
    const float step = q.params.scale[r];
    EXPECT_LE(std::fabs(q.dequantized[r * in + 5] - w[r * in + 5]), step / 2 * 1.0001f) << "row " << r;
  }
}

TEST(Gptq, SingularHessianWithoutDampeningIsAClearError) {
  const std::int64_t in = 8, rows = 20;
  std::vector<float> x(rows * in);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < in; ++c)
      x[r * in + c] = static_cast<float>(r % 3 + 1);  // rank one, no zero column
  ActivationStats stats(in);
  stats.add(x, rows);
  const std::vector<float> w(4 * in, 0.5f);
  WeightQuantOptions o;
  o.damp = 0;
  try {
    quantize_linear(w, 4, in, &stats, WeightMethod::kGptq, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not positive definite"), std::string::npos) << e.what();
  }
  o.damp = 0.01;  // the default dampening makes it definite
  EXPECT_NO_THROW(quantize_linear(w, 4, in, &stats, WeightMethod::kGptq, o));
}

TEST(Awq, UniformActivationsChooseAlphaZeroAndOutlierChannelsDoNot) {
  std::mt19937 gen(seed());
  const std::int64_t out = 16, in = 32, rows = 256;
  const auto w = gaussian(out * in, 0.3f, gen);
  // Every channel with the same mean |x|: the scales are 1 for every alpha, so alpha = 0 (ties to the
  // smallest).
  std::vector<float> x(rows * in);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < in; ++c) x[r * in + c] = ((r + c) % 2 ? 1.0f : -1.0f);
  ActivationStats uniform(in);
  uniform.add(x, rows);
  WeightQuantOptions o;
  o.bits = 3;
  const QuantizedLinear a = quantize_linear(w, out, in, &uniform, WeightMethod::kAwq, o);
  EXPECT_EQ(a.alpha, 0.0);
  for (const float s : a.input_scale) EXPECT_FLOAT_EQ(s, 1.0f);
  // Salient channels (20x activations) whose weights sit on a grid stretched by a few large weights
  // elsewhere in the row: AWQ never does worse than RTN (alpha = 0 is RTN) and here does better.
  auto wide = w;
  for (std::int64_t r = 0; r < out; ++r) wide[r * in + (r * 5 + 1) % in] = (r % 2 ? 2.5f : -2.5f);
  ActivationStats skewed(in);
  const auto xs = activations(rows, in, gen, 20.0f);
  skewed.add(xs, rows);
  const QuantizedLinear awq = quantize_linear(wide, out, in, &skewed, WeightMethod::kAwq, o);
  const QuantizedLinear rtn = quantize_linear(wide, out, in, &skewed, WeightMethod::kRtn, o);
  EXPECT_GT(awq.alpha, 0.0);
  EXPECT_LT(recomputed_output_error(wide, awq.dequantized, out, in, xs),
            recomputed_output_error(wide, rtn.dequantized, out, in, xs));
  // The codes are W diag(s) quantized: dequantizing and dividing by s gives the weights reported.
  for (std::int64_t r = 0; r < out; ++r)
    for (std::int64_t c = 0; c < in; ++c) {
      const float back =
          dequantize_value<float>(awq.codes[r * in + c], awq.params.scale[r], 0) / awq.input_scale[c];
      EXPECT_FLOAT_EQ(back, awq.dequantized[r * in + c]);
    }
}

TEST(Awq, AutoClipNeverRaisesTheOutputErrorAndUsesTheSlotsHessianBlock) {
  std::mt19937 gen(seed());
  SCOPED_TRACE("seed " + std::to_string(seed()));
  const std::int64_t out = 24, in = 64, rows = 400;
  auto w = gaussian(out * in, 0.3f, gen);
  for (std::size_t k = 0; k < w.size(); k += 37) w[k] *= 6;  // stretched grids leave room to clip
  ActivationStats stats(in);
  const auto x = activations(rows, in, gen, 10.0f);
  stats.add(x, rows);
  for (const std::int64_t group : {std::int64_t{0}, std::int64_t{16}}) {
    WeightQuantOptions o;
    o.bits = 3;
    o.group_size = group;
    const QuantizedLinear clipped = quantize_linear(w, out, in, &stats, WeightMethod::kAwq, o);
    o.awq_clip = false;
    const QuantizedLinear plain = quantize_linear(w, out, in, &stats, WeightMethod::kAwq, o);
    EXPECT_EQ(clipped.alpha, plain.alpha) << "the clip step comes after the scale search";
    // Large weights stretch every grid they sit in: shrinking those ranges must pay off, strictly (awq()
    // keeps the unclipped result when it does not, so <= alone would hold by construction).
    EXPECT_LT(recomputed_output_error(w, clipped.dequantized, out, in, x),
              recomputed_output_error(w, plain.dequantized, out, in, x))
        << "group " << group;
    EXPECT_NE(clipped.params.scale, plain.params.scale) << "group " << group;
  }
  // With a diagonal Hessian the slot's block error is the importance-weighted error: both searches agree.
  std::vector<double> imp(static_cast<std::size_t>(in));
  std::uniform_real_distribution<double> u(0.1, 10.0);
  for (double& v : imp) v = u(gen);
  const Eigen::MatrixXd diag = Eigen::Map<const Eigen::VectorXd>(imp.data(), in).asDiagonal();
  const Eigen::Map<const Eigen::MatrixXd> diag_view(diag.data(), in, in);
  QuantSpec spec = weight_method_spec(WeightQuantOptions{.bits = 3, .group_size = 16}, in);
  const QuantizedLinear by_importance = detail::rtn_linear(w, out, in, spec, {imp, nullptr, 20, 0.5, {}});
  const QuantizedLinear by_block = detail::rtn_linear(w, out, in, spec, {{}, &diag_view, 20, 0.5, {}});
  // The two sum in different orders, so an exact tie between clip factors could fall either way: compare
  // the weighted error each reaches, which is the same whichever of two tied factors is taken.
  auto weighted = [&](const QuantizedLinear& q) {
    double e = 0;
    for (std::int64_t r = 0; r < out; ++r)
      for (std::int64_t c = 0; c < in; ++c) {
        const double d = static_cast<double>(w[r * in + c]) - q.dequantized[r * in + c];
        e += imp[static_cast<std::size_t>(c)] * d * d;
      }
    return e;
  };
  EXPECT_NEAR(weighted(by_block), weighted(by_importance), 1e-9 * weighted(by_importance));
  const QuantizedLinear unclipped = detail::rtn_linear(w, out, in, spec, {});
  EXPECT_LT(weighted(by_block), weighted(unclipped));
  // A Hessian of the wrong size is refused.
  const Eigen::MatrixXd small = Eigen::MatrixXd::Identity(in / 2, in / 2);
  const Eigen::Map<const Eigen::MatrixXd> small_view(small.data(), in / 2, in / 2);
  EXPECT_THROW(detail::rtn_linear(w, out, in, spec, {{}, &small_view, 20, 0.5, {}}), Error);
}

TEST(Awq, AlphaScoredOnSampledRowsMatchesTheExhaustiveSearch) {
  std::mt19937 gen(seed());
  SCOPED_TRACE("seed " + std::to_string(seed()));
  // Layers with more output rows than the default sample (256), outlier input channels, stretched grids.
  const std::int64_t out = 600, in = 256, rows = 512;
  std::vector<float> w;
  ActivationStats stats(in);
  for (const bool clip : {false, true}) {
    // Summed over layers. On one layer this small (256 inputs, 16 of them 10x), alphas a grid step or two
    // apart differ by up to ~4% through rounding alone, so the sample (then the 4 best of it on the whole
    // layer) misses the exhaustive alpha on ~4% of layers, either way for the clip step, which can swing
    // the result by +-10% when alpha differs (400 layers: mean ratio 1.0004 without clip, 1.0006 with).
    // The claim is that sampling costs no error over layers: within 1%, the issue's bound for "the same
    // error", without clip (what alpha is chosen on); 2% with clip, whose swings average out slower.
    double sampled_sum = 0, exhaustive_sum = 0;
    for (int layer = 0; layer < 16; ++layer) {
      w = gaussian(out * in, 0.3f, gen);
      for (std::size_t k = 0; k < w.size(); k += 53) w[k] *= 6;
      stats = ActivationStats(in);
      stats.add(activations(rows, in, gen, 10.0f), rows);
      WeightQuantOptions o;
      o.bits = 4;
      o.group_size = 32;
      o.awq_clip = clip;
      ASSERT_EQ(o.awq_sample_rows, 256);
      const QuantizedLinear sampled = quantize_linear(w, out, in, &stats, WeightMethod::kAwq, o);
      o.awq_sample_rows = 0;
      const QuantizedLinear exhaustive = quantize_linear(w, out, in, &stats, WeightMethod::kAwq, o);
      // The sample only picks alpha: the error reported is the whole layer's, recomputed here from H
      // (both in double, summed in different orders).
      EXPECT_NEAR(sampled.output_error, output_error(w, sampled.dequantized, out, in, stats.hessian()),
                  1e-9 * sampled.output_error);
      if (sampled.alpha == exhaustive.alpha) EXPECT_EQ(sampled.dequantized, exhaustive.dequantized);
      sampled_sum += sampled.output_error;
      exhaustive_sum += exhaustive.output_error;
    }
    EXPECT_LE(sampled_sum, (clip ? 1.02 : 1.01) * exhaustive_sum) << "clip " << clip;
  }
  // A layer no taller than the sample is scored on all its rows: the result is the exhaustive one.
  const std::int64_t short_out = 200;
  const std::vector<float> w_short(w.begin(), w.begin() + short_out * in);
  WeightQuantOptions o;
  const QuantizedLinear by_default = quantize_linear(w_short, short_out, in, &stats, WeightMethod::kAwq, o);
  o.awq_sample_rows = 0;
  const QuantizedLinear all_rows = quantize_linear(w_short, short_out, in, &stats, WeightMethod::kAwq, o);
  EXPECT_EQ(by_default.alpha, all_rows.alpha);
  EXPECT_EQ(by_default.dequantized, all_rows.dequantized);
  EXPECT_EQ(by_default.output_error, all_rows.output_error);
}

TEST(CompareOutputs, PlainTermsAndTheEdgeCases) {
  const std::int64_t out = 3, in = 4, rows = 50;
  std::mt19937 gen(seed());
  const auto x = gaussian(rows * in, 1.0f, gen);
  const auto w = gaussian(out * in, 1.0f, gen);
  auto approx = w;
  approx[5] += 0.25f;
  ActivationStats stats(in);
  stats.add(x, rows);
  const SquareMatrix h = stats.hessian();
  double err = 0, sig = 0;  // direct: sum over rows and outputs of (x W^T - x What^T)^2, and of (x W^T)^2
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      double y = 0, d = 0;
      for (std::int64_t c = 0; c < in; ++c) {
        y += double(x[r * in + c]) * w[o * in + c];
        d += double(x[r * in + c]) * (w[o * in + c] - approx[o * in + c]);
      }
      err += d * d;
      sig += y * y;
    }
  const OutputError e = compare_outputs(w, approx, out, in, h);
  // The library's Hessian is accumulated in float32: relative agreement to a few 2^-24 (1e-6 leaves room;
  // an absolute 1e-9 on `relative` failed for 1 seed in ~130).
  EXPECT_NEAR(e.mse, err / (rows * out), 1e-6 * err / (rows * out));
  EXPECT_NEAR(e.relative, err / sig, 1e-6 * err / sig);
  EXPECT_NEAR(e.sqnr_db, -10 * std::log10(err / sig), 1e-5);
  const OutputError same = compare_outputs(w, w, out, in, h);
  EXPECT_EQ(same.relative, 0.0);
  EXPECT_TRUE(std::isinf(same.sqnr_db) && same.sqnr_db > 0);
  const std::vector<float> zero(w.size(), 0.0f);
  const OutputError from_zero = compare_outputs(zero, approx, out, in, h);  // zero outputs, nonzero error
  EXPECT_TRUE(std::isinf(from_zero.relative));
  EXPECT_TRUE(std::isinf(from_zero.sqnr_db) && from_zero.sqnr_db < 0);
  EXPECT_THROW(compare_outputs(w, approx, out, in + 1, h), Error);
}

TEST(Importance, WeightedScaleSearchLowersTheWeightedError) {
  std::mt19937 gen(seed());
  const std::int64_t out = 16, in = 64, rows = 300;
  auto w = gaussian(out * in, 0.3f, gen);
  for (std::size_t k = 0; k < w.size(); k += 29) w[k] *= 8;  // a few large weights stretch the min/max grid
  ActivationStats stats(in, /*with_hessian=*/false);
  stats.add(activations(rows, in, gen, 10.0f), rows);
  WeightQuantOptions o;
  o.bits = 3;
  o.group_size = 32;
  const QuantizedLinear imp = quantize_linear(w, out, in, &stats, WeightMethod::kImportance, o);
  const QuantizedLinear rtn = quantize_linear(w, out, in, nullptr, WeightMethod::kRtn, o);
  const auto ms = stats.mean_square();
  auto weighted = [&](const QuantizedLinear& q) {
    double e = 0;
    for (std::int64_t r = 0; r < out; ++r)
      for (std::int64_t c = 0; c < in; ++c) {
        const double d = w[r * in + c] - q.dequantized[r * in + c];
        e += ms[c] * d * d;
      }
    return e;
  };
  EXPECT_LT(weighted(imp), weighted(rtn));
  EXPECT_EQ(imp.params.scale.size(), static_cast<std::size_t>(out * 2));
}

TEST(SmoothQuant, W8A8ErrorOnOutlierChannelsDropsAtLeastFourfold) {
  std::mt19937 gen(seed());
  const std::int64_t out = 64, in = 128, rows = 512;
  const auto w = gaussian(out * in, 0.1f, gen);
  auto x = gaussian(rows * in, 1.0f, gen);
  for (std::int64_t r = 0; r < rows; ++r)
    for (const std::int64_t c : {5, 40, 77, 100}) x[r * in + c] *= 100.0f;  // outlier channels, 100x
  ActivationStats stats(in, false);
  stats.add(x, rows);
  WeightQuantOptions o;
  o.bits = 8;
  const QuantizedLinear plain = quantize_linear(w, out, in, &stats, WeightMethod::kRtn, o);
  const QuantizedLinear smooth = quantize_linear(w, out, in, &stats, WeightMethod::kSmoothQuant, o);
  ASSERT_EQ(smooth.input_scale.size(), static_cast<std::size_t>(in));
  // A8: activations fake-quantized per tensor, int8 symmetric (min/max), before / after smoothing.
  auto a8 = [&](std::vector<float> a) {
    QuantSpec spec;
    const TensorView<const float> v(a.data(), {rows, in});
    std::vector<float> y(a.size());
    fake_quantize<float>(v, choose_qparams<float>(v, spec), y);
    return y;
  };
  std::vector<float> xs(x.size());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < in; ++c) xs[r * in + c] = x[r * in + c] / smooth.input_scale[c];
  const auto xq = a8(x), xsq = a8(xs);
  // y = x W^T in double: reference, plain W8A8, smoothed W8A8 (weights: the codes of W diag(s)).
  double err_plain = 0, err_smooth = 0;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t n = 0; n < out; ++n) {
      double ref = 0, yp = 0, ys = 0;
      for (std::int64_t c = 0; c < in; ++c) {
        ref += double(x[r * in + c]) * w[n * in + c];
        yp += double(xq[r * in + c]) * plain.dequantized[n * in + c];
        ys += double(xsq[r * in + c]) * (smooth.dequantized[n * in + c] * smooth.input_scale[c]);
      }
      err_plain += (ref - yp) * (ref - yp);
      err_smooth += (ref - ys) * (ref - ys);
    }
  std::printf("W8A8 output error: plain %.4e, smoothquant %.4e (%.1fx lower)\n", err_plain, err_smooth,
              err_plain / err_smooth);
  EXPECT_GE(err_plain / err_smooth, 4.0) << err_plain << " vs " << err_smooth;
}

// What a progress callback saw: at least one call, every fraction in [0, 1], nondecreasing, the last 1.
void expect_monotone_to_one(const std::vector<double>& seen, const char* what) {
  ASSERT_FALSE(seen.empty()) << what;
  EXPECT_GE(seen.front(), 0.0) << what;
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1]) << what << " call " << i;
  EXPECT_LE(*std::max_element(seen.begin(), seen.end()), 1.0) << what;
  EXPECT_EQ(seen.back(), 1.0) << what;
}

// A layer on which AWQ runs every step (the sample, the whole-layer rescoring, the clip pass).
struct SmallLayer {
  static constexpr std::int64_t out = 300, in = 64, rows = 200;
  std::vector<float> w;
  ActivationStats stats{in};
  WeightQuantOptions o;
  explicit SmallLayer(std::mt19937& gen) : w(gaussian(out * in, 0.3f, gen)) {
    stats.add(activations(rows, in, gen, 10.0f), rows);
    o.group_size = 16;
    o.awq_sample_rows = 64;
  }
};

TEST(WeightMethods, ProgressCoversTheComputeMonotoneToOne) {
  std::mt19937 gen(seed());
  SmallLayer layer(gen);
  const std::vector<float>& w = layer.w;
  const ActivationStats& stats = layer.stats;
  const std::int64_t out = SmallLayer::out, in = SmallLayer::in;
  WeightQuantOptions& o = layer.o;
  o.block_size = 16;  // gptq: four blocks of columns
  for (const WeightMethod m : {WeightMethod::kGptq, WeightMethod::kAwq, WeightMethod::kRtn,
                               WeightMethod::kImportance, WeightMethod::kSmoothQuant}) {
    std::vector<double> seen;
    WeightQuantOptions with = o;
    with.progress = [&](double f) { seen.push_back(f); };
    const QuantizedLinear reported = quantize_linear(w, out, in, &stats, m, with);
    expect_monotone_to_one(seen, to_string(m));
    if (m == WeightMethod::kGptq) EXPECT_GE(seen.size(), 5u);  // the inverse, then each block
    if (m == WeightMethod::kAwq) EXPECT_GE(seen.size(), static_cast<std::size_t>(o.alpha_grid + 1));
    // Listening changes nothing.
    EXPECT_EQ(reported.dequantized, quantize_linear(w, out, in, &stats, m, o).dequantized) << to_string(m);
  }
}

TEST(ActivationStats, TakeHessianHandsOverTheSameValuesWithoutACopy) {
  std::mt19937 gen(seed());
  const std::int64_t in = 24, rows = 50;
  ActivationStats stats(in);
  stats.add(activations(rows, in, gen), rows);
  const SquareMatrix copy = stats.hessian();
  const std::vector<double> mean_abs = stats.mean_abs();
  const SquareMatrix taken = stats.take_hessian();
  EXPECT_EQ(taken.n, in);
  EXPECT_EQ(taken.values, copy.values);
  EXPECT_FALSE(stats.has_hessian());
  EXPECT_THROW(stats.hessian(), Error);
  EXPECT_EQ(stats.mean_abs(), mean_abs);
  EXPECT_EQ(stats.rows(), rows);
}

// A Hessian formed by the caller (take_hessian: no copy) gives what quantize_linear forms itself.
TEST(WeightMethods, AGivenHessianGivesTheSameLayer) {
  std::mt19937 gen(seed());
  SmallLayer layer(gen);
  const std::vector<float>& w = layer.w;
  ActivationStats& stats = layer.stats;
  const WeightQuantOptions& o = layer.o;
  const std::int64_t out = SmallLayer::out, in = SmallLayer::in;
  std::vector<QuantizedLinear> formed;
  for (const WeightMethod m : {WeightMethod::kAwq, WeightMethod::kGptq, WeightMethod::kRtn})
    formed.push_back(quantize_linear(w, out, in, &stats, m, o));
  const SquareMatrix h = stats.take_hessian();
  std::size_t i = 0;
  for (const WeightMethod m : {WeightMethod::kAwq, WeightMethod::kGptq, WeightMethod::kRtn}) {
    const QuantizedLinear given = quantize_linear(w, out, in, &stats, h, m, o);
    EXPECT_EQ(given.codes, formed[i].codes) << to_string(m);
    EXPECT_EQ(given.dequantized, formed[i].dequantized) << to_string(m);
    EXPECT_EQ(given.output_error, formed[i].output_error) << to_string(m);
    ++i;
  }
  // Without the accumulator's Hessian, awq and gptq need the given one; a wrong size is refused.
  EXPECT_THROW(quantize_linear(w, out, in, &stats, WeightMethod::kAwq, o), Error);
  const SquareMatrix narrow{in - 1, std::vector<double>((in - 1) * (in - 1))};
  EXPECT_THROW(quantize_linear(w, out, in, &stats, narrow, WeightMethod::kGptq, o), Error);
}

// Without the whole-layer dequantized weights (keep_dequantized false, what the file functions use), every
// method gives the same codes, parameters and errors to the last bit: rtn and awq then go 256 rows at a
// time (300 rows here: two blocks), sampled or exhaustive, with and without the clip search.
TEST(WeightMethods, DroppingTheDequantizedWeightsChangesNothingElse) {
  std::mt19937 gen(seed());
  SmallLayer layer(gen);
  const std::int64_t out = SmallLayer::out, in = SmallLayer::in;
  for (const WeightMethod m : {WeightMethod::kRtn, WeightMethod::kAwq, WeightMethod::kGptq,
                               WeightMethod::kImportance, WeightMethod::kSmoothQuant})
    for (const bool clip : {true, false})
      for (const std::int64_t sample : {std::int64_t{64}, std::int64_t{0}}) {
        if (m != WeightMethod::kAwq && (!clip || sample == 0)) continue;
        WeightQuantOptions o = layer.o;
        o.awq_clip = clip;
        o.awq_sample_rows = sample;
        const QuantizedLinear kept = quantize_linear(layer.w, out, in, &layer.stats, m, o);
        o.keep_dequantized = false;
        const QuantizedLinear lean = quantize_linear(layer.w, out, in, &layer.stats, m, o);
        const std::string what = std::string(to_string(m)) + (clip ? " clip" : "") + " sample " +
                                 std::to_string(sample);
        EXPECT_TRUE(lean.dequantized.empty()) << what;
        EXPECT_EQ(kept.dequantized.size(), static_cast<std::size_t>(out * in)) << what;
        EXPECT_EQ(lean.codes, kept.codes) << what;
        EXPECT_EQ(lean.params.scale, kept.params.scale) << what;
        EXPECT_EQ(lean.params.zero_point, kept.params.zero_point) << what;
        EXPECT_EQ(lean.input_scale, kept.input_scale) << what;
        EXPECT_EQ(lean.alpha, kept.alpha) << what;
        EXPECT_EQ(lean.output_error, kept.output_error) << what;
        EXPECT_GT(kept.output_error, 0.0) << what;
        const ErrorStats direct = compare(layer.w, kept.dequantized);
        for (const ErrorStats* e : {&kept.weight_error, &lean.weight_error}) {
          EXPECT_EQ(e->mse, direct.mse) << what;
          EXPECT_EQ(e->max_abs, direct.max_abs) << what;
          EXPECT_EQ(e->sqnr_db, direct.sqnr_db) << what;
        }
      }
}

TEST(WeightMethods, BadInputIsRejected) {
  ActivationStats stats(8);
  stats.add(std::vector<float>(16, 1.0f), 2);
  const std::vector<float> w(4 * 8, 0.1f);
  EXPECT_THROW(quantize_linear(w, 4, 16, &stats, WeightMethod::kAwq), Error);  // 32 values, 4 x 16 claimed
  const std::vector<float> w16(4 * 16, 0.1f);
  try {
    quantize_linear(w16, 4, 16, &stats, WeightMethod::kAwq);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("activations have 8 columns, the weight has 16 inputs"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(quantize_linear(w, 4, 8, nullptr, WeightMethod::kGptq), Error);
  std::vector<float> nan_w = w;
  nan_w[3] = NAN;
  EXPECT_THROW(quantize_linear(nan_w, 4, 8, &stats, WeightMethod::kRtn), Error);
  WeightQuantOptions o;
  o.group_size = 3;
  EXPECT_THROW(quantize_linear(w, 4, 8, &stats, WeightMethod::kRtn, o), Error);
  ActivationStats no_h(8, false);
  no_h.add(std::vector<float>(16, 1.0f), 2);
  EXPECT_THROW(quantize_linear(w, 4, 8, &no_h, WeightMethod::kGptq), Error);
  EXPECT_THROW(parse_weight_method("gptq2"), Error);
  EXPECT_EQ(parse_weight_method("awq"), WeightMethod::kAwq);
}

}  // namespace
}  // namespace qk
