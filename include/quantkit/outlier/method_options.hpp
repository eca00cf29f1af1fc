// What a request for an outlier-aware method may ask (outlier/weight_methods.hpp), checked before any
// file is read: each method's own options only with that method, and their ranges. qtool maps a problem
// to its option names; a library caller reads the message.
#pragma once

#include <cstdint>
#include <optional>

#include "quantkit/core/error.hpp"
#include "quantkit/outlier/weight_methods.hpp"

namespace qk {

struct MethodRequest {
  WeightMethod method = WeightMethod::kRtn;
  bool has_activations = false;  // calibration activations of the layer's input were given
  int bits = 4;
  std::int64_t group_size = 0;  // 0: per output channel
  std::optional<double> damp;   // gptq
  bool act_order = false;       // gptq
  std::optional<double> alpha;  // smoothquant
  ScaleDType scale_dtype = ScaleDType::kFloat32;
  RangeRule range_rule = RangeRule::kPyTorch;
};

enum class MethodOptionProblem {
  kNeedsActivations,   // every method but rtn learns from the layer's input
  kGptqOption,         // damp or act_order without gptq
  kSmoothQuantOption,  // alpha without smoothquant
  kDampOutOfRange,     // damp outside [0, 1e6)
  kAlphaOutOfRange,    // alpha outside [0, 1]
};

class MethodOptionError : public Error {
 public:
  MethodOptionError(MethodOptionProblem problem, const std::string& message)
      : Error(message), problem_(problem) {}
  MethodOptionProblem problem() const { return problem_; }

 private:
  MethodOptionProblem problem_;
};

// The codes a method makes when the request names no width or groups: what GPTQ and AWQ users expect
// (AutoGPTQ, AutoAWQ, llama.cpp's Q4 formats): 4-bit in groups of kMethodDefaultGroupSize along the
// input, for rtn and importance too (so that they compare like for like), and SmoothQuant's W8A8: 8-bit
// per output channel. A layer whose input width the default group does not divide falls back to one
// scale per output channel. in_features: the layer's input width.
inline constexpr std::int64_t kMethodDefaultGroupSize = 128;
int default_method_bits(WeightMethod method);
std::int64_t default_method_group_size(WeightMethod method, std::int64_t in_features);

// Throws MethodOptionError for the first problem found, in the order of the enum.
void validate_method_request(const MethodRequest& request);

// The options of a valid request: its bits, group size and method options, the defaults for the rest.
WeightQuantOptions method_options(const MethodRequest& request);

}  // namespace qk
