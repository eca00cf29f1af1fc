// qtool mixed (MANIFEST.json | DIR | LAYER.npy...) (--budget-bits B | --budget-bytes N | --max-error E)
//       [--candidates 2,3,4,8,16] [--pin PATTERN=FORMAT]... -o plan.json [--out-dir DIR] [--dry-run]
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
  std::string output;
  std::string out_dir;
  bool dry_run = false;
  std::size_t curve_points = 40;
};

std::string db(double v) { return std::isfinite(v) ? fmt::format("{:.2f}", v) : "exact"; }

nlohmann::json selection_json(const std::string& name, const qk::Selection& s, double mse) {
  return {
      {"name", name}, {"average_bits", s.average_bits}, {"bytes", s.bytes}, {"error", s.error}, {"mse", mse}};
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
  try {
    candidates = qk::parse_candidates(args.candidates);
    for (const std::string& p : args.pins) pins.push_back(qk::parse_pin(p));
  } catch (const qk::Error& e) {
    throw UsageError(e.what());
  }

  const qk::MixedWorkload work = qk::open_mixed_workload(args.inputs, args.output);
  const std::uint64_t total_weights = work.total_weights;
  const auto sens = qk::measure_sensitivity(work.layers, candidates, pins);
  const bool show_curve = args.dry_run || out.json;
  const auto curve =
      show_curve ? qk::tradeoff_curve(sens, args.curve_points) : std::vector<qk::TradeoffPoint>{};
  const double n = static_cast<double>(qk::total_weights(sens));  // MSE = summed squared error / n
  std::optional<qk::Budget> budget;  // the solver's (summed squared error for --max-error)
  std::optional<qk::Plan> plan;
  if (user) {
    plan = qk::plan_within_budget(sens, work.files, *user);
    budget = qk::solver_budget(*user, sens);
  }
  const auto uniform = qk::uniform_alternatives(sens, candidates);

  if (!args.dry_run) {
    // The quantized layers first, the plan last: a failure leaves no plan that claims otherwise.
    if (!args.out_dir.empty()) qk::apply_plan(*plan, args.out_dir, work.protect);
    qk::write_plan(*plan, args.output);
  }

  if (out.json) {
    nlohmann::json j;
    j["weights"] = total_weights;
    j["error_measure"] = "weight-sse";
    j["layers"] = nlohmann::json::array();
    for (const auto& l : sens) {
      nlohmann::json cands = nlohmann::json::array();
      for (const auto& o : l.options) {
        cands.push_back(
            {{"format", qk::to_string(o.format)},
             {"bytes", o.bytes},
             {"error", o.error},
             {"mse", o.weight_error.mse},
             {"sqnr_db", std::isfinite(o.weight_error.sqnr_db) ? nlohmann::json(o.weight_error.sqnr_db)
                                                               : nlohmann::json(nullptr)}});
      }
      j["layers"].push_back({{"name", l.name},
                             {"shape", l.shape},
                             {"weights", l.weights},
                             {"pinned_by", l.pinned_by},
                             {"candidates", cands}});
    }
    j["tradeoff"] = nlohmann::json::array();
    for (const auto& p : curve)
      j["tradeoff"].push_back(
          {{"average_bits", p.average_bits}, {"bytes", p.bytes}, {"error", p.error}, {"mse", p.error / n}});
    j["uniform"] = nlohmann::json::array();
    for (const auto& [name, s] : uniform) {
      nlohmann::json u = selection_json(name, s, s.error / n);
      if (budget) u["fits_budget"] = qk::fits_budget(s, *budget);
      j["uniform"].push_back(u);
    }
    if (plan) j["plan"] = nlohmann::json::parse(qk::plan_to_json(*plan));
    if (!args.output.empty()) j["output"] = args.output;
    if (!args.out_dir.empty()) j["out_dir"] = args.out_dir;
    print_json(j);
    return 0;
  }

  if (args.dry_run) {
    fmt::print("{} layers, {} weights; error = weight MSE (SQNR dB), bytes include scales\n", sens.size(),
               total_weights);
    fmt::print("{:<24} {:>10} {:>7} {:>12} {:>10} {:>9}\n", "layer", "weights", "format", "bytes", "mse",
               "sqnr_db");
    for (const auto& l : sens) {
      for (const auto& o : l.options) {
        fmt::print("{:<24} {:>10} {:>7} {:>12} {:>10.3e} {:>9}{}\n", l.name, l.weights,
                   qk::to_string(o.format), o.bytes, o.weight_error.mse, db(o.weight_error.sqnr_db),
                   l.pinned_by.empty() ? "" : "  (pinned by " + l.pinned_by + ")");
      }
    }
    fmt::print("\ntrade-off (Pareto-optimal plans): average bits -> total weight MSE\n");
    fmt::print("{:>8} {:>12} {:>12}\n", "bits", "bytes", "mse");
    for (const auto& p : curve)
      fmt::print("{:>8.3f} {:>12} {:>12.4e}\n", p.average_bits, p.bytes, p.error / n);
  }
  if (plan) {
    fmt::print("{}plan ({} budget {:g}): {:.3f} average bits, {} bytes, total weight MSE {:.4e}{}\n",
               args.dry_run ? "\n" : "", qk::to_string(budget->kind), plan->budget, plan->average_bits(),
               plan->total_bytes(), plan->total_mse(),
               plan->suboptimality_bound > 0
                   ? fmt::format(" (within {:.2g} of optimal)", plan->suboptimality_bound)
                   : " (exact optimum)");
    fmt::print("{:<24} {:>7} {:>12} {:>12} {:>10} {:>9}\n", "layer", "format", "granularity", "bytes", "mse",
               "sqnr_db");
    for (const auto& l : plan->layers)
      fmt::print("{:<24} {:>7} {:>12} {:>12} {:>10.3e} {:>9}{}\n", l.name, qk::to_string(l.format),
                 qk::granularity_name(l.format, l.shape), l.bytes, l.mse, db(l.sqnr_db),
                 l.pinned_by.empty() ? "" : "  (pinned)");
    fmt::print("uniform alternatives:\n");
    for (const auto& [name, s] : uniform)
      fmt::print("  {:<6} {:>7.3f} bits {:>12} bytes  mse {:.4e}  {}\n", name, s.average_bits, s.bytes,
                 s.error / n, qk::fits_budget(s, *budget) ? "fits" : "over budget");
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
         "manifest.json (or its folder), a folder of .npy files (layer = file stem), or LAYER.npy files")
      ->required();
  cmd->add_option("--budget-bits", args->budget_bits,
                  "Average nominal bits per weight (weight-weighted; scales not counted)");
  cmd->add_option("--budget-bytes", args->budget_bytes, "Stored bytes, codes plus scales and zero points");
  cmd->add_option("--max-error", args->max_error, "Cheapest plan whose total weight MSE stays within this");
  cmd->add_option("--candidates", args->candidates,
                  "Formats to choose from: bits 2..8 (per channel), BITSgGROUP (per group, e.g. 4g32), "
                  "16/fp16, 32/fp32")
      ->capture_default_str();
  cmd->add_option("--pin", args->pins,
                  "PATTERN=FORMAT: layers matching the glob keep FORMAT (repeatable; the first match wins; a "
                  "pin matching no layer is an error)");
  cmd->add_option("-o,--output", args->output, "Plan file to write (JSON)");
  cmd->add_option("--out-dir", args->out_dir, "Also write the quantized layers and a manifest.json here");
  cmd->add_flag(
      "--dry-run", args->dry_run,
      "Print every candidate's error and bytes per layer and the whole trade-off curve; write nothing");
  return [args, &out] { return run_mixed(*args, out); };
}

}  // namespace qtool
