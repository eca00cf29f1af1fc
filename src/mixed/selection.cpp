// Sensitivity measurement and the Pareto-frontier dynamic program of mixed-precision selection.
#include "quantkit/mixed/selection.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "quantkit/core/error.hpp"
#include "quantkit/mixed/output_error.hpp"

namespace qk {

PinRule parse_pin(const std::string& text) {
  const auto eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw Error("bad pin '" + text + "': expected PATTERN=FORMAT, e.g. 'encoder.0*=8' or '*norm*=fp16'");
  return {text.substr(0, eq), parse_candidate(text.substr(eq + 1))};
}

bool glob_match(std::string_view pattern, std::string_view name) {
  // Iterative wildcard matching with one backtrack point (the last '*'): linear in practice.
  std::size_t p = 0, n = 0, star = std::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

const char* to_string(ErrorMeasure measure) {
  switch (measure) {
    case ErrorMeasure::kWeightSse:
      return "weight-sse";
    case ErrorMeasure::kOutputSse:
      return "output-sse";
    case ErrorMeasure::kRelative:
      return "relative";
  }
  return "?";
}

ErrorMeasure parse_error_measure(const std::string& text) {
  for (const ErrorMeasure m : {ErrorMeasure::kWeightSse, ErrorMeasure::kOutputSse, ErrorMeasure::kRelative})
    if (text == to_string(m)) return m;
  throw Error("unknown error measure '" + text + "': expected weight-sse, output-sse or relative");
}

double output_sqnr_db(const LayerSensitivity& layer, const CandidateCost& cost) {
  if (!layer.has_activations) return std::nan("");
  if (cost.output_error <= 0) return std::numeric_limits<double>::infinity();
  return 10 * std::log10(layer.output_energy / cost.output_error);
}

namespace {

// The layer's formats: the candidates, or the first pin that matches it (recorded in s.pinned_by).
std::vector<CandidateFormat> layer_formats(const LayerInput& layer,
                                           std::span<const CandidateFormat> candidates,
                                           std::span<const PinRule> pins, LayerSensitivity& s) {
  for (const PinRule& pin : pins) {
    if (glob_match(pin.pattern, layer.name)) {
      s.pinned_by = pin.pattern;
      return {pin.format};
    }
  }
  return {candidates.begin(), candidates.end()};
}

// The measure's error of one candidate (weight_sse: its summed squared weight error).
double measured_error(const LayerSensitivity& s, const CandidateCost& c, double weight_sse,
                      double weight_energy, ErrorMeasure measure) {
  switch (measure) {
    case ErrorMeasure::kWeightSse:
      return weight_sse;
    case ErrorMeasure::kOutputSse:
      return s.has_activations ? c.output_error : weight_sse;
    case ErrorMeasure::kRelative:
      if (s.has_activations) return s.output_energy > 0 ? c.output_error / s.output_energy : c.output_error;
      return weight_energy > 0 ? weight_sse / weight_energy : weight_sse;
  }
  return weight_sse;
}

}  // namespace

std::vector<LayerSensitivity> measure_sensitivity(std::span<const LayerInput> layers,
                                                  std::span<const CandidateFormat> candidates,
                                                  std::span<const PinRule> pins, const TaskMetric& metric,
                                                  ErrorMeasure measure, const ProgressFn& progress) {
  if (layers.empty()) throw Error("mixed precision: no layers");
  if (candidates.empty()) throw Error("mixed precision: no candidate formats");
  std::vector<LayerSensitivity> out;
  std::vector<std::vector<CandidateFormat>> formats(layers.size());
  std::size_t total = 0, done = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    out.emplace_back();
    formats[i] = layer_formats(layers[i], candidates, pins, out[i]);
    total += formats[i].size();
  }
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const LayerInput& layer = layers[i];
    LayerSensitivity& s = out[i];
    s.name = layer.name;
    s.shape = layer.shape;
    s.weights = layer.weights.size();
    s.has_activations = !layer.gram.empty();
    const std::uint64_t in = layer.shape.size() >= 2 && layer.shape[0] > 0
                                 ? s.weights / static_cast<std::uint64_t>(layer.shape[0])
                                 : 0;
    if (s.has_activations && (in == 0 || layer.gram.size() != in * in))
      throw Error("layer " + layer.name + " of shape " + shape_string(layer.shape) +
                  ": an input Gram matrix of " + std::to_string(layer.gram.size()) +
                  " entries does not match " +
                  (in == 0 ? std::string("(activations need a layer of rank >= 2)")
                           : std::to_string(in) + " input features"));
    if (s.has_activations) s.output_energy = output_energy(layer.weights, layer.gram);
    double weight_energy = 0;
    for (const float w : layer.weights) weight_energy += static_cast<double>(w) * w;
    std::string why_not;
    for (const CandidateFormat& f : formats[i]) {
      CandidateResult r;
      try {
        r = apply_candidate(layer.weights, layer.shape, f);
      } catch (const Error& e) {
        if (!s.pinned_by.empty())
          throw Error("layer " + layer.name + ": pinned format " + to_string(f) + ": " + e.what());
        why_not += "; " + to_string(f) + ": " + e.what();
        if (progress) progress(static_cast<double>(++done) / static_cast<double>(total));
        continue;
      }
      CandidateCost c;
      c.format = f;
      c.bytes = r.bytes;
      c.weight_error = r.error;
      if (s.has_activations) c.output_error = output_error(layer.weights, r.approx, layer.gram);
      const double weight_sse = r.error.mse * static_cast<double>(s.weights);
      c.error = metric ? std::max(0.0, metric(i, f, r.approx))
                       : measured_error(s, c, weight_sse, weight_energy, measure);
      if (!std::isfinite(c.error))
        throw Error("layer " + layer.name + ": the error of " + to_string(f) + " is not finite");
      s.options.push_back(c);
      if (progress) progress(static_cast<double>(++done) / static_cast<double>(total));
    }
    if (s.options.empty()) throw Error("layer " + layer.name + ": no candidate format applies" + why_not);
  }
  // A pin that matches nothing is almost always a typo in the pattern: say so instead of ignoring it.
  for (const PinRule& pin : pins) {
    const bool used = std::any_of(layers.begin(), layers.end(),
                                  [&](const LayerInput& l) { return glob_match(pin.pattern, l.name); });
    if (!used) throw Error("pin '" + pin.pattern + "' matches no layer");
  }
  return out;
}

const char* to_string(BudgetKind kind) {
  switch (kind) {
    case BudgetKind::kAverageBits:
      return "average-bits";
    case BudgetKind::kBytes:
      return "bytes";
    case BudgetKind::kMaxError:
      return "max-error";
  }
  return "?";
}

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

struct Node {
  std::uint64_t cost = 0;
  double error = 0;
  std::int64_t parent = -1;  // index into the previous layer's frontier
  std::int32_t choice = -1;
};

struct Frontier {
  std::vector<std::vector<Node>> levels;  // levels[l]: frontier after layers 0..l-1
  double suboptimality_bound = 0;
};

std::uint64_t option_cost(const LayerSensitivity& layer, const CandidateCost& c, bool nominal_bits) {
  return nominal_bits ? c.format.nominal_bits(layer.weights) : c.bytes;
}

Frontier build_frontier(const std::vector<LayerSensitivity>& layers, bool nominal_bits,
                        const SelectionOptions& options) {
  if (layers.empty()) throw Error("mixed precision: no layers");
  Frontier f;
  f.levels.push_back({Node{}});
  double bound = 1.0;
  const double step = 1.0 + options.epsilon / static_cast<double>(layers.size());
  for (const LayerSensitivity& layer : layers) {
    if (layer.options.empty()) throw Error("layer " + layer.name + " has no candidate format");
    const std::vector<Node>& prev = f.levels.back();
    std::vector<Node> next;
    next.reserve(prev.size() * layer.options.size());
    for (std::size_t p = 0; p < prev.size(); ++p) {
      for (std::size_t o = 0; o < layer.options.size(); ++o) {
        next.push_back({prev[p].cost + option_cost(layer, layer.options[o], nominal_bits),
                        prev[p].error + layer.options[o].error, static_cast<std::int64_t>(p),
                        static_cast<std::int32_t>(o)});
      }
    }
    std::sort(next.begin(), next.end(), [](const Node& a, const Node& b) {
      return a.cost != b.cost ? a.cost < b.cost : a.error < b.error;
    });
    // Keep a point only when it errs strictly less than every cheaper one (the Pareto frontier).
    std::vector<Node> kept;
    for (const Node& n : next) {
      if (kept.empty() || n.error < kept.back().error) kept.push_back(n);
    }
    // Thinning: drop a point when the last kept (cheaper) one errs at most `ratio` times as much. Should
    // one pass not bring the frontier under the cap, the ratio's excess over 1 doubles and it runs again. The
    // least-error point always stays, so every error threshold reachable before thinning stays reachable.
    double ratio = step;
    while (kept.size() > std::max<std::size_t>(options.max_frontier, 2)) {
      std::vector<Node> thinned;
      for (std::size_t i = 0; i < kept.size(); ++i) {
        const Node& n = kept[i];
        if (thinned.empty() || n.error * ratio < thinned.back().error || i + 1 == kept.size())
          thinned.push_back(n);
      }
      kept.swap(thinned);
      bound *= ratio;
      ratio = 1 + 2 * (ratio - 1);
    }
    f.levels.push_back(std::move(kept));
  }
  f.suboptimality_bound = bound - 1.0;
  return f;
}

std::vector<std::size_t> trace_choices(const Frontier& f, std::size_t end_index) {
  std::vector<std::size_t> choice(f.levels.size() - 1);
  std::int64_t idx = static_cast<std::int64_t>(end_index);
  for (std::size_t l = f.levels.size() - 1; l > 0; --l) {
    const Node& n = f.levels[l][static_cast<std::size_t>(idx)];
    choice[l - 1] = static_cast<std::size_t>(n.choice);
    idx = n.parent;
  }
  return choice;
}

Selection summarize(const std::vector<LayerSensitivity>& layers, std::vector<std::size_t> choice,
                    double bound) {
  Selection s;
  s.choice = std::move(choice);
  double bit_sum = 0;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const CandidateCost& c = layers[l].options[s.choice[l]];
    s.error += c.error;
    s.bytes += c.bytes;
    s.weights += layers[l].weights;
    bit_sum += static_cast<double>(c.format.nominal_bits(layers[l].weights));
  }
  s.average_bits = s.weights ? bit_sum / static_cast<double>(s.weights) : 0;
  s.suboptimality_bound = bound;
  return s;
}

}  // namespace

Selection select_formats(const std::vector<LayerSensitivity>& layers, const Budget& budget,
                         const SelectionOptions& options) {
  if (!std::isfinite(budget.value) || budget.value < 0)
    throw Error(std::string("mixed precision: the ") + to_string(budget.kind) +
                " budget must be a finite non-negative number");
  const bool nominal_bits = budget.kind == BudgetKind::kAverageBits;
  const Frontier f = build_frontier(layers, nominal_bits, options);
  const std::vector<Node>& last = f.levels.back();
  std::uint64_t weights = 0;
  for (const auto& l : layers) weights += l.weights;
  if (budget.kind == BudgetKind::kMaxError) {
    // Cheapest first: the first frontier point within the threshold is the cheapest plan that meets it.
    for (std::size_t i = 0; i < last.size(); ++i) {
      if (last[i].error <= budget.value) return summarize(layers, trace_choices(f, i), f.suboptimality_bound);
    }
    throw Error("no plan keeps the total error within " + num(budget.value) + ": the smallest reachable is " +
                num(last.back().error));
  }
  // The cost limit: average bits -> total nominal bits (a tiny slack absorbs the decimal budget's
  // rounding, so --budget-bits 4 admits a plan of exactly 4.0 bits).
  const double limit =
      nominal_bits ? budget.value * static_cast<double>(weights) * (1 + 1e-12) : budget.value;
  std::int64_t best = -1;
  for (std::size_t i = 0; i < last.size(); ++i) {
    if (static_cast<double>(last[i].cost) <= limit)
      best = static_cast<std::int64_t>(i);  // errors fall along it
  }
  if (best < 0) {
    const double smallest = nominal_bits
                                ? static_cast<double>(last.front().cost) / static_cast<double>(weights)
                                : static_cast<double>(last.front().cost);
    throw Error(std::string("no plan fits the ") + to_string(budget.kind) + " budget " + num(budget.value) +
                ": the smallest plan needs " + num(smallest));
  }
  return summarize(layers, trace_choices(f, static_cast<std::size_t>(best)), f.suboptimality_bound);
}

std::optional<Selection> uniform_selection(const std::vector<LayerSensitivity>& layers,
                                           const CandidateFormat& format) {
  std::vector<std::size_t> choice;
  for (const LayerSensitivity& layer : layers) {
    std::size_t pick = layer.options.size();
    for (std::size_t o = 0; o < layer.options.size(); ++o) {
      if (!layer.pinned_by.empty() || layer.options[o].format == format) pick = o;
    }
    if (pick == layer.options.size()) return std::nullopt;
    choice.push_back(pick);
  }
  return summarize(layers, std::move(choice), 0);
}

bool fits_budget(const Selection& s, const Budget& budget) {
  switch (budget.kind) {
    case BudgetKind::kAverageBits:
      return s.average_bits <= budget.value * (1 + 1e-12);
    case BudgetKind::kBytes:
      return static_cast<double>(s.bytes) <= budget.value;
    case BudgetKind::kMaxError:
      return s.error <= budget.value;
  }
  return false;
}

std::vector<TradeoffPoint> tradeoff_curve(const std::vector<LayerSensitivity>& layers, std::size_t max_points,
                                          const SelectionOptions& options) {
  const Frontier f = build_frontier(layers, /*nominal_bits=*/true, options);
  const std::vector<Node>& last = f.levels.back();
  std::vector<std::size_t> picks;
  const std::size_t n = last.size();
  if (n <= max_points || max_points < 2) {
    for (std::size_t i = 0; i < n; ++i) picks.push_back(i);
  } else {
    for (std::size_t k = 0; k < max_points; ++k) {
      const std::size_t i = k * (n - 1) / (max_points - 1);
      if (picks.empty() || picks.back() != i) picks.push_back(i);
    }
  }
  std::vector<TradeoffPoint> curve;
  for (const std::size_t i : picks) {
    const Selection s = summarize(layers, trace_choices(f, i), f.suboptimality_bound);
    curve.push_back({s.average_bits, s.bytes, s.error});
  }
  return curve;
}

}  // namespace qk
