// Activation-aware mixed precision: the output error through the input Gram matrix against a brute-force
// ||X dW^T||^2 on random data, each error measure, group formats' nominal bits, and progress.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/mixed/output_error.hpp"
#include "quantkit/mixed/selection.hpp"

namespace qk {
namespace {

unsigned seed() { return static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed()); }

std::vector<float> random_values(std::mt19937& gen, std::size_t n, float scale = 1) {
  std::normal_distribution<float> d(0, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

// ||X (W - A)^T||^2 from the products themselves, in double: rows x out dot products of length in.
double brute_output_error(const std::vector<float>& x, const std::vector<float>& w,
                          const std::vector<float>& a, std::size_t in) {
  const std::size_t rows = x.size() / in, out = w.size() / in;
  double sum = 0;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double y = 0;
      for (std::size_t i = 0; i < in; ++i)
        y += double(x[r * in + i]) * (double(w[o * in + i]) - a[o * in + i]);
      sum += y * y;
    }
  return sum;
}

TEST(MixedOutputError, GramPathEqualsBruteForceOnRandomData) {
  std::mt19937 gen(seed());
  SCOPED_TRACE("seed " + std::to_string(seed()));
  for (const std::size_t in : {1u, 3u, 4u, 5u, 17u, 64u}) {
    for (const std::size_t rows : {1u, 7u, 40u}) {
      const std::size_t out = 1 + (in + rows) % 6;
      const auto x = random_values(gen, rows * in, 3);
      const auto w = random_values(gen, out * in);
      const auto a = random_values(gen, out * in);
      const std::vector<double> gram = input_gram(x, static_cast<std::int64_t>(in));
      ASSERT_EQ(gram.size(), in * in);
      for (std::size_t i = 0; i < in; ++i)  // G = X^T X, entry by entry
        for (std::size_t j = 0; j < in; ++j) {
          double g = 0;
          for (std::size_t r = 0; r < rows; ++r) g += double(x[r * in + i]) * x[r * in + j];
          EXPECT_NEAR(gram[i * in + j], g, 1e-9 * (1 + std::abs(g)));
        }
      // Rounding is relative to the terms summed, at most ||X||^2 (||W||^2 + ||A||^2) (Cauchy-Schwarz).
      double xx = 0, ww = 0;
      for (const float v : x) xx += double(v) * v;
      for (std::size_t i = 0; i < w.size(); ++i) ww += double(w[i]) * w[i] + double(a[i]) * a[i];
      const double slack = 1e-12 * xx * ww;
      const double want = brute_output_error(x, w, a, in);
      EXPECT_NEAR(output_error(w, a, gram), want, 1e-9 * want + slack) << "in " << in << " rows " << rows;
      const std::vector<float> zeros(w.size(), 0.0f);
      const double energy = brute_output_error(x, w, zeros, in);
      EXPECT_NEAR(output_energy(w, gram), energy, 1e-9 * energy + slack);
      EXPECT_EQ(output_error(w, w, gram), 0.0);
    }
  }
  EXPECT_THROW(input_gram(std::vector<float>(7), 2), Error);
  EXPECT_THROW(output_error(std::vector<float>(6), std::vector<float>(6), std::vector<double>(8)), Error);
}

TEST(MixedOutputError, EachMeasureOnLayersWithAndWithoutActivations) {
  std::mt19937 gen(seed());
  SCOPED_TRACE("seed " + std::to_string(seed()));
  const auto w1 = random_values(gen, 8 * 64), w2 = random_values(gen, 4 * 32, 0.1f);
  auto x = random_values(gen, 50 * 64);
  for (std::size_t r = 0; r < 50; ++r) x[r * 64 + 5] *= 30;  // an outlier input channel
  const std::vector<double> gram = input_gram(x, 64);
  const std::vector<LayerInput> layers = {{"with", {8, 64}, w1, gram}, {"without", {4, 32}, w2}};
  const auto candidates = parse_candidates("2,4,4g32,8");
  const auto weight = measure_sensitivity(layers, candidates);
  const auto output = measure_sensitivity(layers, candidates, {}, {}, ErrorMeasure::kOutputSse);
  const auto relative = measure_sensitivity(layers, candidates, {}, {}, ErrorMeasure::kRelative);
  double w2_energy = 0;
  for (const float v : w2) w2_energy += double(v) * v;
  EXPECT_TRUE(output[0].has_activations);
  EXPECT_FALSE(output[1].has_activations);
  EXPECT_NEAR(output[0].output_energy, output_energy(w1, gram), 1e-9 * output[0].output_energy);
  for (std::size_t o = 0; o < candidates.size(); ++o) {
    const CandidateCost& c = output[0].options[o];
    const CandidateResult r = apply_candidate(w1, {8, 64}, candidates[o]);
    const double want = brute_output_error(x, w1, r.approx, 64);
    EXPECT_NEAR(c.error, want, 1e-9 * want + 1e-12) << to_string(candidates[o]);
    EXPECT_NEAR(c.output_error, want, 1e-9 * want + 1e-12);
    EXPECT_DOUBLE_EQ(relative[0].options[o].error, c.output_error / output[0].output_energy);
    EXPECT_NEAR(output_sqnr_db(output[0], c), 10 * std::log10(output[0].output_energy / want), 1e-9);
    EXPECT_DOUBLE_EQ(weight[0].options[o].error, c.weight_error.mse * 512);  // unchanged default
    // The layer without activations keeps its weight error (relative: over its weight energy).
    EXPECT_DOUBLE_EQ(output[1].options[o].error, weight[1].options[o].error);
    EXPECT_DOUBLE_EQ(relative[1].options[o].error, weight[1].options[o].error / w2_energy);
    EXPECT_TRUE(std::isnan(output_sqnr_db(output[1], output[1].options[o])));
  }
  // Measured on the outputs too, 8 bits beat 2.
  EXPECT_LT(output[0].options[3].error, output[0].options[0].error);
  EXPECT_EQ(parse_error_measure("relative"), ErrorMeasure::kRelative);
  EXPECT_THROW(parse_error_measure("kl"), Error);
}

TEST(MixedOutputError, ActivationsOfTheWrongWidthNameTheLayer) {
  const std::vector<float> w(4 * 6, 1.0f);
  const std::vector<double> gram(5 * 5, 1.0);
  const std::vector<LayerInput> layers = {{"k_proj", {4, 6}, w, gram}};
  try {
    measure_sensitivity(layers, parse_candidates("4"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer k_proj"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("6 input features"), std::string::npos) << e.what();
  }
}

TEST(MixedOutputError, GroupFormatsCountTheirScalesInNominalBits) {
  EXPECT_EQ(parse_candidate("4").nominal_bits(), 4.0);
  EXPECT_EQ(parse_candidate("4g32").nominal_bits(), 5.0);
  EXPECT_EQ(parse_candidate("4g128").nominal_bits(), 4.25);
  EXPECT_EQ(parse_candidate("3g64").nominal_bits(), 3.5);
  EXPECT_EQ(parse_candidate("fp16").nominal_bits(), 16.0);
  EXPECT_EQ(parse_candidate("4g128").nominal_bits(std::uint64_t{256 * 256}), 4u * 65536u + 32u * 512u);
  // A bit budget of 4.25 admits 4g128 but not 4g32.
  std::mt19937 gen(3);
  const auto w = random_values(gen, 16 * 128);
  const std::vector<LayerInput> layers = {{"fc", {16, 128}, w}};
  const auto sens = measure_sensitivity(layers, parse_candidates("4g32,4g128,2"));
  const Selection s = select_formats(sens, {BudgetKind::kAverageBits, 4.25});
  EXPECT_EQ(to_string(sens[0].options[s.choice[0]].format), "4g128");
  EXPECT_DOUBLE_EQ(s.average_bits, 4.25);
}

TEST(MixedOutputError, ProgressCountsLayersTimesCandidates) {
  std::mt19937 gen(5);
  const auto a = random_values(gen, 4 * 32), b = random_values(gen, 2 * 64);
  const std::vector<LayerInput> layers = {{"a", {4, 32}, a}, {"b", {2, 64}, b}};
  std::vector<double> seen;
  measure_sensitivity(layers, parse_candidates("2,4,4g48"), {}, {}, ErrorMeasure::kWeightSse,
                      [&](double f) { seen.push_back(f); });
  // 4g48 applies to neither layer (48 divides no row and no layer): still counted as done.
  ASSERT_EQ(seen.size(), 6u);
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1]);
  EXPECT_DOUBLE_EQ(seen.back(), 1.0);
}

}  // namespace
}  // namespace qk
