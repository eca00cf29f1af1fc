// User budgets for mixed precision (mixed/budget.hpp): validation, the MSE -> summed squared error
// conversion, the reachability check and the plan that records the user's value, on two hand-made layers
// whose every assignment is easy to enumerate.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "quantkit/core/error.hpp"
#include "quantkit/mixed/budget.hpp"

namespace qk {
namespace {

CandidateCost cost(int bits, std::uint64_t bytes, double error) {
  CandidateCost c;
  c.format = CandidateFormat{integer_format(bits, true), 0};
  c.bytes = bytes;
  c.error = error;
  return c;
}

// a: 100 weights, b: 300; each in 4 or 8 bits. Summed squared errors: a 10 / 1, b 30 / 3.
std::vector<LayerSensitivity> two_layers() {
  std::vector<LayerSensitivity> layers(2);
  layers[0].name = "a";
  layers[0].shape = {10, 10};
  layers[0].weights = 100;
  layers[0].options = {cost(4, 50, 10), cost(8, 100, 1)};
  layers[1].name = "b";
  layers[1].shape = {10, 30};
  layers[1].weights = 300;
  layers[1].options = {cost(4, 150, 30), cost(8, 300, 3)};
  return layers;
}

const std::vector<std::string> kFiles = {"a.npy", "b.npy"};

TEST(MixedBudget, RejectsNegativeAndNonFiniteValues) {
  EXPECT_NO_THROW(check_budget({BudgetKind::kBytes, 0}));
  EXPECT_NO_THROW(check_budget({BudgetKind::kMaxError, 1e-9}));
  for (const double bad : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    for (const BudgetKind kind : {BudgetKind::kAverageBits, BudgetKind::kBytes, BudgetKind::kMaxError}) {
      try {
        check_budget({kind, bad});
        ADD_FAILURE() << "no error for " << bad;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("must be a finite number >= 0"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << "names a flag: " << e.what();
      }
    }
  }
}

TEST(MixedBudget, MaxErrorIsAMeanOverEveryWeight) {
  const auto layers = two_layers();
  EXPECT_EQ(total_weights(layers), 400u);
  EXPECT_EQ(total_weights({}), 1u);  // a mean is always defined
  const Budget solver = solver_budget({BudgetKind::kMaxError, 0.05}, layers);
  EXPECT_EQ(solver.kind, BudgetKind::kMaxError);
  EXPECT_DOUBLE_EQ(solver.value, 20.0);
  for (const BudgetKind kind : {BudgetKind::kAverageBits, BudgetKind::kBytes})
    EXPECT_EQ(solver_budget({kind, 5}, layers).value, 5);  // no conversion
}

TEST(MixedBudget, UnreachableThresholdIsSaidInMse) {
  const auto layers = two_layers();
  // The least reachable error: both layers in 8 bits, (1 + 3) / 400 = 0.01.
  EXPECT_NO_THROW(check_reachable(layers, {BudgetKind::kMaxError, 0.01}));
  try {
    check_reachable(layers, {BudgetKind::kMaxError, 0.005});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "no plan keeps the total weight MSE within 0.005: the least reachable is 0.01");
  }
  EXPECT_NO_THROW(check_reachable(layers, {BudgetKind::kBytes, 0}));  // select_formats judges those
}

// Under any other measure the threshold is on the measure's total as it is, and said so.
TEST(MixedBudget, OtherMeasuresTakeTheThresholdAsItIs) {
  const auto layers = two_layers();
  EXPECT_DOUBLE_EQ(solver_budget({BudgetKind::kMaxError, 0.05}, layers, "relative").value, 0.05);
  EXPECT_NO_THROW(check_reachable(layers, {BudgetKind::kMaxError, 4}, "output-sse"));  // 1 + 3
  try {
    check_reachable(layers, {BudgetKind::kMaxError, 3}, "output-sse");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "no plan keeps the total error (output-sse) within 3: the least reachable is 4");
  }
  const Plan p = plan_within_budget(layers, kFiles, {BudgetKind::kMaxError, 4}, "output-sse");
  EXPECT_EQ(p.error_measure, "output-sse");
  EXPECT_LE(p.total_error(), 4.0);
}

TEST(MixedBudget, PlanWithinEachKindOfBudget) {
  const auto layers = two_layers();
  // MSE 0.05 = summed 20: a4 + b8 (error 13, 350 bytes) is the cheapest within it (a8 + b8: 400 bytes).
  Plan p = plan_within_budget(layers, kFiles, {BudgetKind::kMaxError, 0.05});
  EXPECT_EQ(p.objective, BudgetKind::kMaxError);
  EXPECT_EQ(p.budget, 0.05);  // the user's value, not the solver's 20
  EXPECT_EQ(p.total_bytes(), 350u);
  EXPECT_EQ(p.layers[0].format.bits(), 4);
  EXPECT_EQ(p.layers[1].format.bits(), 8);
  EXPECT_EQ(p.layers[1].file, "b.npy");
  // 5 average bits: a8 + b4 (800 + 1200 bits over 400 weights), error 31 beats a4 + b4 (40).
  p = plan_within_budget(layers, kFiles, {BudgetKind::kAverageBits, 5});
  EXPECT_EQ(p.budget, 5);
  EXPECT_DOUBLE_EQ(p.average_bits(), 5.0);
  EXPECT_DOUBLE_EQ(p.total_error(), 31.0);
  // 400 bytes: everything in 8 bits.
  p = plan_within_budget(layers, kFiles, {BudgetKind::kBytes, 400});
  EXPECT_EQ(p.total_bytes(), 400u);
  EXPECT_DOUBLE_EQ(p.total_error(), 4.0);
  EXPECT_THROW(plan_within_budget(layers, kFiles, {BudgetKind::kBytes, 100}), Error);  // below a4 + b4
  EXPECT_THROW(plan_within_budget(layers, kFiles, {BudgetKind::kMaxError, 0.001}), Error);
  EXPECT_THROW(plan_within_budget(layers, kFiles, {BudgetKind::kBytes, -1}), Error);
}

TEST(MixedBudget, UniformAlternativesNameTheirCandidate) {
  const auto layers = two_layers();
  const auto u = uniform_alternatives(layers, {layers[0].options[0].format, layers[0].options[1].format});
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0].first, "4");
  EXPECT_EQ(u[0].second.bytes, 200u);
  EXPECT_EQ(u[1].first, "8");
  EXPECT_DOUBLE_EQ(u[1].second.error, 4.0);
  // A candidate no layer offers is left out.
  EXPECT_TRUE(uniform_alternatives(layers, {CandidateFormat{Format::kFloat16, 0}}).empty());
}

}  // namespace
}  // namespace qk
