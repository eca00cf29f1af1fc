// User budgets for mixed precision (mixed/budget.hpp).
#include "quantkit/mixed/budget.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "quantkit/core/error.hpp"

namespace qk {

namespace {

// %g, as the messages print thresholds and errors.
std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

void check_budget(const Budget& budget) {
  if (!(std::isfinite(budget.value) && budget.value >= 0))
    throw Error(std::string("a budget (") + to_string(budget.kind) + ") must be a finite number >= 0, not " +
                number(budget.value));
}

std::uint64_t total_weights(const std::vector<LayerSensitivity>& layers) {
  std::uint64_t n = 0;
  for (const LayerSensitivity& l : layers) n += l.weights;
  return std::max<std::uint64_t>(1, n);
}

Budget solver_budget(const Budget& user, const std::vector<LayerSensitivity>& layers,
                     const std::string& error_measure) {
  if (user.kind != BudgetKind::kMaxError || error_measure != "weight-sse") return user;
  return {BudgetKind::kMaxError, user.value * static_cast<double>(total_weights(layers))};
}

void check_reachable(const std::vector<LayerSensitivity>& layers, const Budget& user,
                     const std::string& error_measure) {
  if (user.kind != BudgetKind::kMaxError) return;
  double least = 0;
  for (const LayerSensitivity& l : layers) {
    double best = l.options.front().error;
    for (const CandidateCost& o : l.options) best = std::min(best, o.error);
    least += best;
  }
  const bool mse = error_measure == "weight-sse";
  if (least > solver_budget(user, layers, error_measure).value)
    throw Error("no plan keeps the total " +
                (mse ? std::string("weight MSE") : "error (" + error_measure + ")") + " within " +
                number(user.value) + ": the least reachable is " +
                number(mse ? least / static_cast<double>(total_weights(layers)) : least));
}

Plan plan_within_budget(const std::vector<LayerSensitivity>& layers, const std::vector<std::string>& files,
                        const Budget& user, const std::string& error_measure) {
  check_budget(user);
  check_reachable(layers, user, error_measure);
  const Budget budget = solver_budget(user, layers, error_measure);
  const Selection selection = select_formats(layers, budget);
  Plan plan = make_plan(layers, files, selection, budget, error_measure);
  plan.budget = user.value;
  return plan;
}

std::vector<std::pair<std::string, Selection>> uniform_alternatives(
    const std::vector<LayerSensitivity>& layers, const std::vector<CandidateFormat>& candidates) {
  std::vector<std::pair<std::string, Selection>> out;
  for (const CandidateFormat& c : candidates)
    if (auto s = uniform_selection(layers, c)) out.emplace_back(to_string(c), *s);
  return out;
}

}  // namespace qk
