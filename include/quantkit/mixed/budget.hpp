// A mixed-precision budget in the user's units, and the plan that meets it. Under the weight-sse measure
// the user states kMaxError as the total weight MSE (the mean over every weight); the solver
// (mixed/selection.hpp) minimises summed squared error, so the threshold is converted once, here, and the
// plan records what the user asked. Under any other measure (output-sse, relative, a task metric) the
// threshold is on the measure's total as it is.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "quantkit/mixed/candidate.hpp"
#include "quantkit/mixed/plan.hpp"
#include "quantkit/mixed/selection.hpp"

namespace qk {

// The formats a plan chooses among when a request names none (parse_candidates' text form): 2, 3, 4 and
// 8 bits per channel, 3 bits per group of 64, 4 bits per group of 128 and of 32, and float16. The group
// formats serve layers with outlier weights (an LLM's down_proj, lm_head), where one scale per row is
// set by a few large weights; a bit budget counts their scales (CandidateFormat::nominal_bits).
inline constexpr const char* kDefaultCandidates = "2,3,3g64,4,4g128,4g32,8,16";

// Throws when the value is negative, NaN or infinite.
void check_budget(const Budget& budget);

// The weights over all layers (at least 1, so that a mean is always defined).
std::uint64_t total_weights(const std::vector<LayerSensitivity>& layers);

// The solver's budget of a user budget: under weight-sse, kMaxError times the weights (MSE -> summed
// squared error); the others unchanged. `error_measure` is the plan's (to_string(ErrorMeasure) or
// "task-metric").
Budget solver_budget(const Budget& user, const std::vector<LayerSensitivity>& layers,
                     const std::string& error_measure = "weight-sse");

// Throws, in the user's unit, when a kMaxError threshold lies below the least error any plan reaches
// (every layer in its most accurate candidate). Other budgets: select_formats says what fits.
void check_reachable(const std::vector<LayerSensitivity>& layers, const Budget& user,
                     const std::string& error_measure = "weight-sse");

// The best plan within a user budget: checked, converted, selected; the plan records the user's value.
// files[i] is layer i's weight file (as make_plan takes it).
Plan plan_within_budget(const std::vector<LayerSensitivity>& layers, const std::vector<std::string>& files,
                        const Budget& user, const std::string& error_measure = "weight-sse");

// Every layer in one candidate (pinned layers keep their pins), for comparison with a plan; a candidate
// some free layer cannot take is left out. Named by the candidate's text form.
std::vector<std::pair<std::string, Selection>> uniform_alternatives(
    const std::vector<LayerSensitivity>& layers, const std::vector<CandidateFormat>& candidates);

}  // namespace qk
