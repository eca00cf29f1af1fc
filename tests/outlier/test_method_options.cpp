// Validation of an outlier-aware method request (outlier/method_options.hpp): each method's options
// only with it, the ranges, activations for every method but rtn; messages name no command-line flag.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "quantkit/outlier/method_options.hpp"

namespace qk {
namespace {

MethodRequest request(WeightMethod method) {
  MethodRequest r;
  r.method = method;
  r.has_activations = true;
  return r;
}

void expect_problem(const MethodRequest& r, MethodOptionProblem problem, const std::string& phrase) {
  try {
    validate_method_request(r);
    ADD_FAILURE() << "no error, expected: " << phrase;
  } catch (const MethodOptionError& e) {
    EXPECT_EQ(e.problem(), problem) << e.what();
    EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << "names a flag: " << e.what();
  }
}

TEST(MethodOptions, EveryMethodWithItsOwnOptionsIsValid) {
  for (const WeightMethod m : {WeightMethod::kRtn, WeightMethod::kImportance, WeightMethod::kAwq,
                               WeightMethod::kGptq, WeightMethod::kSmoothQuant})
    EXPECT_NO_THROW(validate_method_request(request(m))) << to_string(m);
  MethodRequest rtn = request(WeightMethod::kRtn);
  rtn.has_activations = false;  // rtn learns nothing from activations
  EXPECT_NO_THROW(validate_method_request(rtn));
  MethodRequest gptq = request(WeightMethod::kGptq);
  gptq.damp = 0.0;
  gptq.act_order = true;
  EXPECT_NO_THROW(validate_method_request(gptq));
  MethodRequest smooth = request(WeightMethod::kSmoothQuant);
  for (const double alpha : {0.0, 0.5, 1.0}) {
    smooth.alpha = alpha;
    EXPECT_NO_THROW(validate_method_request(smooth)) << alpha;
  }
}

TEST(MethodOptions, ProblemsAreFoundInOrder) {
  MethodRequest r = request(WeightMethod::kAwq);
  r.has_activations = false;
  r.alpha = 0.3;  // also wrong, but the missing activations come first
  expect_problem(r, MethodOptionProblem::kNeedsActivations, "awq needs calibration activations");
  r = request(WeightMethod::kRtn);
  r.act_order = true;
  expect_problem(r, MethodOptionProblem::kGptqOption, "gptq options");
  r = request(WeightMethod::kAwq);
  r.damp = 0.1;
  expect_problem(r, MethodOptionProblem::kGptqOption, "gptq options");
  r = request(WeightMethod::kAwq);
  r.alpha = 0.2;
  expect_problem(r, MethodOptionProblem::kSmoothQuantOption, "smoothquant option");
  r = request(WeightMethod::kGptq);
  for (const double damp : {-0.01, 1e6, std::nan("")}) {
    r.damp = damp;
    expect_problem(r, MethodOptionProblem::kDampOutOfRange, "damp must be >= 0");
  }
  r = request(WeightMethod::kSmoothQuant);
  for (const double alpha : {-0.1, 1.5, std::nan("")}) {
    r.alpha = alpha;
    expect_problem(r, MethodOptionProblem::kAlphaOutOfRange, "alpha must lie in [0, 1]");
  }
}

TEST(MethodOptions, OptionsTakeTheRequestAndTheDefaultsForTheRest) {
  const WeightQuantOptions defaults;
  MethodRequest r = request(WeightMethod::kGptq);
  r.bits = 3;
  r.group_size = 32;
  WeightQuantOptions o = method_options(r);
  EXPECT_EQ(o.bits, 3);
  EXPECT_EQ(o.group_size, 32);
  EXPECT_EQ(o.damp, defaults.damp);
  EXPECT_FALSE(o.act_order);
  EXPECT_EQ(o.smooth_alpha, defaults.smooth_alpha);
  r.damp = 0.05;
  r.act_order = true;
  o = method_options(r);
  EXPECT_EQ(o.damp, 0.05);
  EXPECT_TRUE(o.act_order);
  r = request(WeightMethod::kSmoothQuant);
  r.alpha = 0.8;
  EXPECT_EQ(method_options(r).smooth_alpha, 0.8);
}

}  // namespace
}  // namespace qk
