// qtool mixed (MANIFEST.json | DIR | LAYER.npy... | MODEL.safetensors | MODEL.onnx) (--budget-bits B | --budget-bytes N |
// --max-error E)
//       [--candidates LIST] [--pin PATTERN=FORMAT]... [--acts LAYER=X.npy]... [--error MEASURE]
//       -o plan.json [--out-dir DIR] [--dry-run]
#include <fmt/format.h>

#include <cmath>
#include <tuple>

#include "common.hpp"
#include "quantkit/files/mixed_workload.hpp"
#include "quantkit/files/plan_file.hpp"
#include "quantkit/mixed/budget.hpp"
#include "quantkit/mixed/plan.hpp"
#include "quantkit/mixed/selection.hpp"

namespace qtool {

namespace {

struct MixedArgs {
  std::vector<std::string> inputs;
  std::optional<double> budget_bits;
  std::optional<double> budget_bytes;
  std::optional<double> max_error;
  std::string candidates = qk::kDefaultCandidates;
  std::vector<std::string> pins;
  std::vector<std::string> acts;
  std::string error;  // empty: weight-sse, or relative once a layer has activations
  std::string output;
  std::string out_dir;
  bool dry_run = false;
  std::size_t curve_points = 40;
};

std::string db(double v) {
  return std::isnan(v) ? "-" : std::isfinite(v) ? fmt::format("{:.2f}", v) : "exact";
}

int run_mixed(const MixedArgs& args, const Output& out) {
  const int budgets = (args.budget_bits ? 1 : 0) + (args.budget_bytes ? 1 : 0) + (args.max_error ? 1 : 0);
  if (budgets > 1) throw UsageError("give one of --budget-bits, --budget-bytes and --max-error");
  if (budgets == 0 && !args.dry_run)
    throw UsageError("give --budget-bits, --budget-bytes or --max-error (or --dry-run)");
  if (!args.dry_run && args.output.empty()) throw UsageError("-o plan.json is required (or --dry-run)");
  if (args.dry_run && (!args.output.empty() || !args.out_dir.empty()))
    throw UsageError("--dry-run writes nothing; drop -o and --out-dir");
  std::optional<qk::Budget> user;  // in the user's units: average bits, bytes, total weight MSE
  for (const auto& [flag, kind, value] :
       {std::tuple{"--budget-bits", qk::BudgetKind::kAverageBits, args.budget_bits},
        std::tuple{"--budget-bytes", qk::BudgetKind::kBytes, args.budget_bytes},
        std::tuple{"--max-error", qk::BudgetKind::kMaxError, args.max_error}}) {
    if (!value) continue;
    user = qk::Budget{kind, *value};
    try {
      qk::check_budget(*user);
    } catch (const qk::Error&) {
      throw UsageError(std::string(flag) + " must be a finite number >= 0");
    }
  }
  std::vector<qk::CandidateFormat> candidates;
  std::vector<qk::PinRule> pins;
  std::vector<qk::ActivationFile> acts;
  std::optional<qk::ErrorMeasure> measure;
  try {
    candidates = qk::parse_candidates(args.candidates);
    for (const std::string& p : args.pins) pins.push_back(qk::parse_pin(p));
    for (const std::string& a : args.acts) acts.push_back(qk::parse_activation_file(a));
    if (!args.error.empty()) measure = qk::parse_error_measure(args.error);
  } catch (const qk::Error& e) {
    throw UsageError(e.what());
  }

  const qk::MixedWorkload work = qk::open_mixed_workload(args.inputs, args.output, acts);
  if (!measure) measure = work.has_activations() ? qk::ErrorMeasure::kRelative : qk::ErrorMeasure::kWeightSse;
  const std::string measure_name = qk::to_string(*measure);
  auto progress = make_progress("mixed");
  const auto sens = qk::measure_sensitivity(work.layers, candidates, pins, {}, *measure, progress);
  finish_progress();
  qk::MixedReport report{&sens, measure_name};
  if (args.dry_run || out.json) report.curve = qk::tradeoff_curve(sens, args.curve_points);
  const double n = static_cast<double>(qk::total_weights(sens));  // MSE = summed squared error / n
  if (user) {
    report.plan = qk::plan_within_budget(sens, work.files, *user, measure_name);
    report.solver_budget = qk::solver_budget(*user, sens, measure_name);
  }
  report.uniform = qk::uniform_alternatives(sens, candidates);
  const auto& plan = report.plan;

  if (!args.dry_run) {
    // The quantized layers first, the plan last: a failure leaves no plan that claims otherwise.
    if (!args.out_dir.empty()) qk::apply_plan(*plan, args.out_dir, work.protect);
    qk::write_plan(*plan, args.output);
  }

  if (out.json) {
    nlohmann::json j = nlohmann::json::parse(qk::mixed_report_json(report));
    if (!args.output.empty()) j["output"] = args.output;
    if (!args.out_dir.empty()) j["out_dir"] = args.out_dir;
    print_json(j);
    return 0;
  }

  const bool weight_sse = *measure == qk::ErrorMeasure::kWeightSse;
  const auto total = [&](double error) {
    return weight_sse ? fmt::format("total weight MSE {:.4e}", error / n)
                      : fmt::format("{} {:.4e}", measure_name, error);
  };
  if (args.dry_run) {
    fmt::print("{} layers, {} weights; error = {}; weight MSE and SQNR (dB), output SQNR with activations\n",
               sens.size(), work.total_weights, measure_name);
    fmt::print("{:<24} {:>10} {:>7} {:>12} {:>10} {:>9} {:>9}\n", "layer", "weights", "format", "bytes",
               "mse", "sqnr_db", "out_sqnr");
    for (const auto& l : sens)
      for (const auto& o : l.options)
        fmt::print("{:<24} {:>10} {:>7} {:>12} {:>10.3e} {:>9} {:>9}{}\n", l.name, l.weights,
                   qk::to_string(o.format), o.bytes, o.weight_error.mse, db(o.weight_error.sqnr_db),
                   db(qk::output_sqnr_db(l, o)),
                   l.pinned_by.empty() ? "" : "  (pinned by " + l.pinned_by + ")");
    fmt::print("\ntrade-off (Pareto-optimal plans): average bits -> {}\n",
               weight_sse ? "total weight MSE" : measure_name);
    fmt::print("{:>8} {:>12} {:>12}\n", "bits", "bytes", "error");
    for (const auto& p : report.curve)
      fmt::print("{:>8.3f} {:>12} {:>12.4e}\n", p.average_bits, p.bytes, weight_sse ? p.error / n : p.error);
  }
  if (plan) {
    fmt::print("{}plan ({} budget {:g}): {:.3f} average bits, {} bytes, {}{}\n", args.dry_run ? "\n" : "",
               qk::to_string(report.solver_budget->kind), plan->budget, plan->average_bits(),
               plan->total_bytes(), total(plan->total_error()),
               plan->suboptimality_bound > 0
                   ? fmt::format(" (within {:.2g} of optimal)", plan->suboptimality_bound)
                   : " (exact optimum)");
    fmt::print("{:<24} {:>7} {:>12} {:>12} {:>10} {:>9} {:>9}\n", "layer", "format", "granularity", "bytes",
               "mse", "sqnr_db", "out_sqnr");
    for (const auto& l : plan->layers)
      fmt::print("{:<24} {:>7} {:>12} {:>12} {:>10.3e} {:>9} {:>9}{}\n", l.name, qk::to_string(l.format),
                 qk::granularity_name(l.format, l.shape), l.bytes, l.mse, db(l.sqnr_db), db(l.output_sqnr_db),
                 l.pinned_by.empty() ? "" : "  (pinned)");
    fmt::print("uniform alternatives:\n");
    for (const auto& [name, s] : report.uniform)
      fmt::print("  {:<6} {:>7.3f} bits {:>12} bytes  {}  {}\n", name, s.average_bits, s.bytes,
                 total(s.error), qk::fits_budget(s, *report.solver_budget) ? "fits" : "over budget");
    if (!args.dry_run) fmt::print("wrote {}\n", args.output);
    if (!args.out_dir.empty()) fmt::print("wrote the quantized layers to {}\n", args.out_dir);
  }
  return 0;
}

}  // namespace

Handler add_mixed(CLI::App& app, Output& out) {
  auto* cmd = app.add_subcommand(
      "mixed",
      "Choose a format per layer (mixed precision) under a budget from each layer's quantization error");
  auto args = std::make_shared<MixedArgs>();
  cmd->add_option(
         "inputs", args->inputs,
         "manifest.json (or its folder), a folder of .npy files (layer = file stem), LAYER.npy files, or a "
         "safetensors model (layer = tensor: its floating tensors of rank >= 2), or an ONNX model (layer = a weight "
         "qtool quantize MODEL.onnx would quantize)")
      ->required();
  cmd->add_option("--budget-bits", args->budget_bits,
                  "Average nominal bits per weight (weight-weighted; a group format counts its scales, e.g. "
                  "4g32 = 5; per-channel scales are not counted)");
  cmd->add_option("--budget-bytes", args->budget_bytes, "Stored bytes, codes plus scales and zero points");
  cmd->add_option("--max-error", args->max_error,
                  "Cheapest plan whose total weight MSE (other --error: total error) stays within this");
  cmd->add_option("--candidates", args->candidates,
                  "Formats to choose from: bits 2..8 (per channel), BITSgGROUP (per group, e.g. 4g32), "
                  "16/fp16, 32/fp32")
      ->capture_default_str();
  cmd->add_option("--pin", args->pins,
                  "PATTERN=FORMAT: layers matching the glob keep FORMAT (repeatable; the first match wins; a "
                  "pin matching no layer is an error)");
  cmd->add_option(
         "--acts", args->acts,
         "LAYER=X.npy: the layer's input activations, [rows, in] with in = prod(shape[1:]) (repeatable); "
         "the layer is then judged by its output error ||X dW^T||^2")
      ->type_name("LAYER=FILE");
  cmd->add_option("--error", args->error,
                  "What a plan minimises: weight-sse (default without activations), output-sse, or relative "
                  "(each layer's error over its signal, 1/SQNR; default with activations)");
  cmd->add_option("-o,--output", args->output, "Plan file to write (JSON)");
  cmd->add_option("--out-dir", args->out_dir, "Also write the quantized layers and a manifest.json here");
  cmd->add_flag(
      "--dry-run", args->dry_run,
      "Print every candidate's error and bytes per layer and the whole trade-off curve; write nothing");
  return [args, &out] { return run_mixed(*args, out); };
}

}  // namespace qtool
