// Validation of an outlier-aware method request (outlier/method_options.hpp).
#include "quantkit/outlier/method_options.hpp"

#include <string>

namespace qk {

int default_method_bits(WeightMethod method) { return method == WeightMethod::kSmoothQuant ? 8 : 4; }

std::int64_t default_method_group_size(WeightMethod method, std::int64_t in_features) {
  if (method == WeightMethod::kSmoothQuant) return 0;
  return in_features > 0 && in_features % kMethodDefaultGroupSize == 0 ? kMethodDefaultGroupSize : 0;
}

void validate_method_request(const MethodRequest& r) {
  if (r.method != WeightMethod::kRtn && !r.has_activations)
    throw MethodOptionError(
        MethodOptionProblem::kNeedsActivations,
        std::string(to_string(r.method)) + " needs calibration activations of the layer's input");
  if ((r.damp || r.act_order) && r.method != WeightMethod::kGptq)
    throw MethodOptionError(MethodOptionProblem::kGptqOption, "damp and act_order are gptq options");
  if (r.alpha && r.method != WeightMethod::kSmoothQuant)
    throw MethodOptionError(MethodOptionProblem::kSmoothQuantOption, "alpha is a smoothquant option");
  // The upper bound keeps the dampened diagonal finite; no useful dampening comes near it.
  if (r.damp && !(*r.damp >= 0 && *r.damp < 1e6))
    throw MethodOptionError(MethodOptionProblem::kDampOutOfRange, "damp must be >= 0 (and below 1e6)");
  if (r.alpha && !(*r.alpha >= 0 && *r.alpha <= 1))
    throw MethodOptionError(MethodOptionProblem::kAlphaOutOfRange, "alpha must lie in [0, 1]");
}

WeightQuantOptions method_options(const MethodRequest& r) {
  WeightQuantOptions o;
  o.bits = r.bits;
  o.group_size = r.group_size;
  o.damp = r.damp.value_or(o.damp);
  o.act_order = r.act_order;
  o.smooth_alpha = r.alpha.value_or(o.smooth_alpha);
  o.scale_dtype = r.scale_dtype;
  o.range_rule = r.range_rule;
  return o;
}

}  // namespace qk
