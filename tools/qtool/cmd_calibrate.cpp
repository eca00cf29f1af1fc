// qtool calibrate INPUTS... -o calib.json [--method M] [spec flags]
// qtool calibrate --merge A.json B.json... -o ALL.json
// qtool calibrate --validate calib.json INPUTS... [--max-mismatch F] [--strict]
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common.hpp"
#include "quantkit/calib/calibration.hpp"
#include "quantkit/calib/presets.hpp"
#include "quantkit/files/calibration_file.hpp"
#include "quantkit/io/atomic_file.hpp"

namespace qtool {

namespace {

struct CalibrateArgs {
  std::vector<std::string> inputs;
  std::string output;
  std::string method = "minmax";
  double percentile = 99.99;
  int bins = qk::Histogram::kDefaultBins;
  float averaging_constant = 0.01f;
  SpecOptions spec;
  std::vector<std::string> merge;
  std::string validate;
  double max_mismatch = 0.2;
  bool strict = false;
};

constexpr int kExitFlagged = 3;

std::string range_string(float lo, float hi) { return fmt::format("[{:.6g}, {:.6g}]", lo, hi); }

void print_calibration(const qk::ObserverMap& tensors, const qk::ResultMap& results,
                       const qk::CalibrationFileInfo& info, const Output& out) {
  if (out.json) {
    std::fputs(qk::calibration_json(tensors, results, info, /*with_state=*/false).c_str(), stdout);
    return;
  }
  for (const auto& [name, r] : results) {
    fmt::print("{}: {} {}, {} batch(es), {} values, {}\n", name, qk::shape_string(r.shape),
               qk::to_string(r.config.method), r.batches, r.count, qk::describe_spec(r.config.spec));
    if (r.slots.size() == 1) {
      const qk::SlotCalibration& s = r.slots[0];
      fmt::print("  observed {}  clip {}  scale {:.6g}  zero_point {}  clipped {:.4f}%\n",
                 range_string(s.min, s.max), range_string(s.clip.lo, s.clip.hi), s.scale, s.zero_point,
                 100.0 * r.clipped_fraction);
    } else {
      const auto [lo, hi] = std::minmax_element(r.params.scale.begin(), r.params.scale.end());
      fmt::print("  {} channels/groups, scales [{:.6g}, {:.6g}], clipped {:.4f}%\n", r.slots.size(), *lo, *hi,
                 100.0 * r.clipped_fraction);
    }
  }
  if (info.dynamic_activations) {
    fmt::print(
        "note: preset {} quantizes activations dynamically at run time; this calibration serves "
        "validation only\n",
        info.preset);
  }
}

std::string db_string(double db) { return std::isinf(db) ? "inf" : fmt::format("{:.2f}", db); }

int run_validate(const CalibrateArgs& args, const Output& out) {
  if (args.inputs.empty()) throw UsageError("--validate needs held-out INPUTS");
  auto progress = make_progress("validate");
  const qk::ValidationReport report =
      qk::validate_calibration(args.validate, args.inputs, args.max_mismatch, progress);
  finish_progress();
  if (out.json) {
    nlohmann::json j;
    j["calibration"] = args.validate;
    j["max_mismatch"] = report.max_mismatch;
    j["flagged"] = report.any_flagged();
    nlohmann::json ts = nlohmann::json::array();
    for (const qk::TensorValidation& t : report.tensors) {
      nlohmann::json e;
      e["name"] = t.name;
      e["calibrated"] = t.calibrated;
      if (t.calibrated) {
        e["count"] = t.count;
        e["range_mismatch"] = t.range_mismatch;
        e["worst_slot"] = t.worst_slot;
        e["calib_range"] = {t.calib_range.lo, t.calib_range.hi};
        e["test_range"] = {t.test_range.lo, t.test_range.hi};
        e["clipped_fraction"] = t.clipped_fraction;
        e["sqnr_db"] = std::isinf(t.sqnr_db) ? nlohmann::json(nullptr) : nlohmann::json(t.sqnr_db);
        e["flagged"] = t.flagged;
      }
      ts.push_back(e);
    }
    j["tensors"] = ts;
    j["not_covered"] = report.not_covered;
    print_json(j);
  } else {
    fmt::print("validation of {} on {} input(s), flag when range mismatch > {:.0f}%\n", args.validate,
               args.inputs.size(), 100.0 * report.max_mismatch);
    fmt::print("{:<24} {:>10} {:>24} {:>24} {:>10} {:>9}  {}\n", "tensor", "mismatch", "calibrated range",
               "held-out range", "clipped", "SQNR dB", "status");
    for (const qk::TensorValidation& t : report.tensors) {
      if (!t.calibrated) {
        fmt::print("{:<24} {:>10} {:>24} {:>24} {:>10} {:>9}  not in the calibration\n", t.name, "-", "-",
                   "-", "-", "-");
        continue;
      }
      fmt::print("{:<24} {:>9.1f}% {:>24} {:>24} {:>9.4f}% {:>9}  {}\n", t.name, 100.0 * t.range_mismatch,
                 range_string(t.calib_range.lo, t.calib_range.hi),
                 range_string(t.test_range.lo, t.test_range.hi), 100.0 * t.clipped_fraction,
                 db_string(t.sqnr_db), t.flagged ? "FLAGGED" : "ok");
    }
    for (const std::string& name : report.not_covered) fmt::print("{:<24} no held-out data\n", name);
    fmt::print("{}\n", report.any_flagged()
                           ? "some tensors are flagged: recalibrate on data like the held-out set"
                           : "all tensors within the threshold");
  }
  return report.any_flagged() && args.strict ? kExitFlagged : 0;
}

}  // namespace

Handler add_calibrate(CLI::App& app, Output& out) {
  auto* cmd = app.add_subcommand("calibrate",
                                 "Calibrate activation ranges over .npy/.npz batches into calib.json; merge "
                                 "calibrations; validate one on "
                                 "held-out data");
  auto args = std::make_shared<CalibrateArgs>();
  cmd->add_option("inputs", args->inputs,
                  "Inputs: X.npy (tensor X), NAME=X.npy (a batch of tensor NAME), A.npz (one tensor per "
                  "member) or A.npz:KEY; a repeated name is another batch of that tensor");
  cmd->add_option("-o,--output", args->output, "Output calibration file (.json)");
  cmd->add_option("--method", args->method,
                  "minmax, moving-average, percentile, entropy, mse or histogram (PyTorch's "
                  "HistogramObserver) (default minmax)")
      ->check(CLI::IsMember({"minmax", "moving-average", "percentile", "entropy", "mse", "histogram"}));
  cmd->add_option("--percentile", args->percentile,
                  "Percentile for --method percentile, in (0, 100] (default 99.99)");
  cmd->add_option("--bins", args->bins, "Histogram bins (default 2048)");
  cmd->add_option("--averaging-constant", args->averaging_constant, "Moving-average constant (default 0.01)");
  args->spec.add_to(*cmd, SpecOptions::Role::kActivations);
  auto* merge = cmd->add_option("--merge", args->merge, "Merge these calibration files (shards) into -o");
  auto* validate = cmd->add_option("--validate", args->validate, "Validate this calibration file on INPUTS");
  merge->excludes(validate);
  cmd->add_option("--max-mismatch", args->max_mismatch,
                  "Flag tensors whose range mismatch exceeds this (default 0.2)");
  cmd->add_flag("--strict", args->strict, "With --validate: exit 3 when any tensor is flagged");
  cmd->footer(
      "Exit codes: 0 ok, 1 failure (bad input, I/O), 2 usage error, 3 --validate --strict flagged a "
      "tensor.");
  return [args, &out] {
    const CalibrateArgs& a = *args;
    if (!a.validate.empty()) return run_validate(a, out);
    if (a.output.empty()) throw UsageError("-o OUTPUT.json is required");
    qk::CalibrationFileInfo info;
    qk::ObserverMap tensors;
    if (!a.merge.empty()) {
      if (!a.inputs.empty()) throw UsageError("--merge takes calibration files, not INPUTS");
      std::vector<std::string> all = a.merge;
      qk::io::check_output_differs(a.output, all);
      tensors = qk::merge_calibrations(all, &info);
    } else {
      if (a.inputs.empty()) throw UsageError("no INPUTS to calibrate");
      qk::io::check_output_differs(a.output, a.inputs);
      qk::ObserverConfig config;
      config.method = qk::parse_calib_method(a.method);
      config.percentile = a.percentile;
      config.bins = a.bins;
      config.averaging_constant = a.averaging_constant;
      config.spec = a.spec.activation_spec();
      if (!a.spec.preset.empty()) {
        info.preset = a.spec.preset;
        info.dynamic_activations = qk::find_preset(a.spec.preset).dynamic_activations;
      }
      auto progress = make_progress("calibrate");
      tensors = qk::calibrate_files(a.inputs, config, progress);
      finish_progress();
    }
    const qk::ResultMap results = qk::calibration_results(tensors);
    qk::write_calibration(a.output, tensors, results, info);
    print_calibration(tensors, results, info, out);
    if (!out.json) fmt::print("wrote {}\n", a.output);
    return 0;
  };
}

}  // namespace qtool
