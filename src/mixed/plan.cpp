// Mixed-precision plans: one format per layer of a set of weight files, as chosen by select_formats, and
// their totals. Writing, reading and applying them: files/plan_file.hpp.
#include "quantkit/mixed/plan.hpp"

#include "quantkit/core/error.hpp"

namespace qk {

std::uint64_t Plan::total_weights() const {
  std::uint64_t n = 0;
  for (const auto& l : layers) n += l.weights;
  return n;
}
std::uint64_t Plan::total_bytes() const {
  std::uint64_t n = 0;
  for (const auto& l : layers) n += l.bytes;
  return n;
}
double Plan::average_bits() const {
  double bits = 0;
  for (const auto& l : layers) bits += static_cast<double>(l.format.nominal_bits(l.weights));
  const auto n = total_weights();
  return n ? bits / static_cast<double>(n) : 0;
}
double Plan::total_error() const {
  double e = 0;
  for (const auto& l : layers) e += l.error;
  return e;
}
double Plan::total_mse() const {
  double sse = 0;
  for (const auto& l : layers) sse += l.mse * static_cast<double>(l.weights);
  const auto n = total_weights();
  return n ? sse / static_cast<double>(n) : 0;
}

Plan make_plan(const std::vector<LayerSensitivity>& layers, const std::vector<std::string>& files,
               const Selection& selection, const Budget& budget, const std::string& error_measure) {
  if (files.size() != layers.size() || selection.choice.size() != layers.size())
    throw Error("make_plan: layers, files and selection differ in length");
  Plan plan;
  plan.objective = budget.kind;
  plan.budget = budget.value;
  plan.error_measure = error_measure;
  plan.suboptimality_bound = selection.suboptimality_bound;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const CandidateCost& c = layers[i].options.at(selection.choice[i]);
    plan.layers.push_back({layers[i].name, files[i], layers[i].shape, c.format, layers[i].weights, c.bytes,
                           c.error, c.weight_error.mse, c.weight_error.sqnr_db, layers[i].pinned_by,
                           output_sqnr_db(layers[i], c)});
  }
  return plan;
}

}  // namespace qk
