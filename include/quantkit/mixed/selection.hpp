// Mixed precision: per-layer sensitivity of every candidate format, and the choice of one format per
// layer that minimises the total error under a budget (or the cheapest one under an error threshold).
//
// The choice is a multiple-choice knapsack. It is solved by dynamic programming over the Pareto frontier
// of (cost, error) pairs, layer by layer: every partial assignment that is not dominated (no other one
// costs no more and errs no more) is kept, so the result is the exact optimum. Should a frontier ever
// exceed `SelectionOptions::max_frontier` points it is thinned: a point is dropped only when a kept one
// costs no more and errs at most (1 + epsilon / layers) times as much (the excess doubles on a further
// pass when one is not enough), so the plan returned errs at most (1 + suboptimality_bound) times the
// optimum; 0 means exact. Under kMaxError the bound reads: the plan costs no more than the optimum for
// the threshold E / (1 + suboptimality_bound).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quantkit/core/progress.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/mixed/candidate.hpp"

namespace qk {

// --pin PATTERN=FORMAT: layers whose name matches the glob (`*`, `?`) keep FORMAT whatever the budget.
// The first pin that matches a layer wins; a pin that matches no layer is an error (a typo, usually).
struct PinRule {
  std::string pattern;
  CandidateFormat format;
};
PinRule parse_pin(const std::string& text);
bool glob_match(std::string_view pattern, std::string_view name);

struct LayerInput {
  std::string name;
  Shape shape;
  std::span<const float> weights;
  // X^T X of the layer's inputs X [rows, in], in = prod(shape[1:]) (mixed/output_error.hpp), row-major
  // [in, in]; empty: no activations, the layer is judged by its weight error.
  std::span<const double> gram = {};
};

// What a candidate's error on a layer is (without a task metric). Summed over layers, it is what the
// selection minimises.
//  - kWeightSse: sum (W - Wq)^2, the total squared weight error (the default).
//  - kOutputSse: ||X (W - Wq)^T||^2 for a layer with activations, its weight error otherwise. Absolute:
//    a layer with large inputs or many outputs weighs more, and layers without activations are in
//    other units, so give activations for every layer or none.
//  - kRelative: the output error over the layer's output energy ||X W^T||^2 (with activations) or the
//    weight error over ||W||^2 (without): 1 / SQNR, a pure number whatever the layer's size or scale,
//    so the plan trades the layers' SQNR against each other, one unit per layer. Chosen as the default
//    once activations are given: in an LLM the absolute errors of q/k/v, the MLP and lm_head live in
//    different spaces and are not comparable, while a layer's relative output error is (README, "Mixed
//    precision for an LLM").
enum class ErrorMeasure { kWeightSse, kOutputSse, kRelative };
const char* to_string(ErrorMeasure measure);
// "weight-sse", "output-sse" or "relative"; throws otherwise.
ErrorMeasure parse_error_measure(const std::string& text);

struct CandidateCost {
  CandidateFormat format;
  std::uint64_t bytes = 0;
  double error = 0;         // what selection minimises: the ErrorMeasure's value, or the metric
  ErrorStats weight_error;  // MSE, max |error|, SQNR of the weights
  double output_error = 0;  // with activations: ||X (W - Wq)^T||^2; else 0
};

struct LayerSensitivity {
  std::string name;
  Shape shape;
  std::uint64_t weights = 0;
  std::string pinned_by;               // the pin pattern, empty when free
  std::vector<CandidateCost> options;  // candidate order; one entry when pinned
  bool has_activations = false;
  double output_energy = 0;  // with activations: ||X W^T||^2; else 0
};

// 10 log10(output energy / output error) of a candidate on a layer with activations; NaN without, +inf
// when the error is 0.
double output_sqnr_db(const LayerSensitivity& layer, const CandidateCost& cost);

// A task metric: the loss of the model with only `layer` replaced by `approx` (the format's weights),
// minus the float model's loss. Lower is better; a negative value (quantization helped) counts as 0 so
// that errors stay additive and non-negative.
using TaskMetric =
    std::function<double(std::size_t layer, const CandidateFormat& format, std::span<const float> approx)>;

// Every candidate on every layer. A candidate a layer cannot take (a group size that divides nothing)
// is left out for that layer; a layer left with no candidate is an error. Without a metric the error is
// `measure`'s (the default: the layer's summed squared weight error, so the total over layers is total
// squared error). `progress` hears the fraction of (layer, candidate) pairs done.
std::vector<LayerSensitivity> measure_sensitivity(std::span<const LayerInput> layers,
                                                  std::span<const CandidateFormat> candidates,
                                                  std::span<const PinRule> pins = {},
                                                  const TaskMetric& metric = {},
                                                  ErrorMeasure measure = ErrorMeasure::kWeightSse,
                                                  const ProgressFn& progress = {});

enum class BudgetKind { kAverageBits, kBytes, kMaxError };
const char* to_string(BudgetKind kind);

// kAverageBits: the weight-weighted mean of the formats' nominal bits (CandidateFormat::nominal_bits:
// 2..8, 16, 32, plus a per-group format's scale bits) may not exceed the value; per-channel scales are
// not counted, as in HAWQ/HAQ's "average bit-width" (the bytes are reported beside it). kBytes: stored
// bytes including scales (and zero points, when a file stores them). kMaxError: the cheapest plan in bytes
// whose total error does not exceed the value.
struct Budget {
  BudgetKind kind = BudgetKind::kBytes;
  double value = 0;
};

struct SelectionOptions {
  std::size_t max_frontier = std::size_t{1} << 16;
  double epsilon = 1e-3;
};

struct Selection {
  std::vector<std::size_t> choice;  // per layer, an index into LayerSensitivity::options
  double error = 0;
  std::uint64_t bytes = 0;
  std::uint64_t weights = 0;
  double average_bits = 0;  // nominal (with group scales), weight-weighted
  double suboptimality_bound = 0;
};

// Throws when no assignment meets the budget, naming the smallest budget that would.
Selection select_formats(const std::vector<LayerSensitivity>& layers, const Budget& budget,
                         const SelectionOptions& options = {});

// Every layer in `format` (pinned layers keep their pin); empty when some free layer cannot take it.
std::optional<Selection> uniform_selection(const std::vector<LayerSensitivity>& layers,
                                           const CandidateFormat& format);
// Whether a selection meets a budget.
bool fits_budget(const Selection& s, const Budget& budget);

// The whole trade-off: every Pareto-optimal plan by nominal average bits, cheapest first, each with
// its total error and bytes (at most max_points, evenly spread along the curve, both ends kept).
struct TradeoffPoint {
  double average_bits = 0;
  std::uint64_t bytes = 0;
  double error = 0;
};
std::vector<TradeoffPoint> tradeoff_curve(const std::vector<LayerSensitivity>& layers,
                                          std::size_t max_points = 64, const SelectionOptions& options = {});

}  // namespace qk
