// A library caller and qtool get the same result for the same request: the files qtool writes equal, byte
// for byte, those the library writes from its own defaults (ptq/defaults.hpp, calib/presets.hpp,
// mixed/budget.hpp), so that no policy lives in qtool alone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli_fixture.hpp"
#include "quantkit/calib/calibration.hpp"
#include "quantkit/calib/presets.hpp"
#include "quantkit/files/calibration_file.hpp"
#include "quantkit/files/mixed_workload.hpp"
#include "quantkit/files/plan_file.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/mixed/budget.hpp"
#include "quantkit/mixed/plan.hpp"
#include "quantkit/ptq/defaults.hpp"
#include "quantkit/files/quantize_file.hpp"

namespace qk::cli_test {
namespace {

using CliLibraryParity = Cli;

// qtool quantize --format F with no granularity flag vs quantize_file with default_codebook_spec(F, rank).
TEST_F(CliLibraryParity, DefaultSpecOfEveryElementFormat) {
  write("w.npy", npy_of("<f4", {4, 128}, weights(4, 128)));
  for (const ElementFormat element :
       {ElementFormat::kInt, ElementFormat::kFp8E4M3, ElementFormat::kFp8E5M2, ElementFormat::kNf4}) {
    SCOPED_TRACE(to_string(element));
    FileQuantOptions options;
    options.spec = default_codebook_spec(element, 2);
    options.element = element;
    quantize_file(path("w.npy").string(), path("lib.npz").string(), options);
    ok({"quantize", "w.npy", "-o", "cli.npz", "--format", to_string(element)});
    EXPECT_EQ(read_file(path("cli.npz")), read_file(path("lib.npz")));
  }
  // The last one written is NF4: groups of 64, two per row of 128.
  const io::QuantizedFile nf4 = io::read_quantized(path("cli.npz").string());
  EXPECT_EQ(nf4.meta.spec.granularity, Granularity::kPerGroup);
  EXPECT_EQ(nf4.meta.spec.group_size, kNf4DefaultGroupSize);
  EXPECT_EQ(nf4.params.scale.size(), 8u);
}

// qtool calibrate [--preset P] vs calibrate_files with activation_spec_for_preset(P).
TEST_F(CliLibraryParity, ActivationSpecOfACalibration) {
  write("x.npy", npy_of("<f4", {16, 64}, weights(16, 64)));
  for (const std::string preset : {"", "ane", "x86"}) {
    SCOPED_TRACE("preset '" + preset + "'");
    ObserverConfig config;
    config.spec = activation_spec_for_preset(preset);
    CalibrationFileInfo info;
    if (!preset.empty()) {
      info.preset = preset;
      info.dynamic_activations = find_preset(preset).dynamic_activations;
    }
    const ObserverMap tensors = calibrate_files({path("x.npy").string()}, config);
    write_calibration(path("lib.json").string(), tensors, calibration_results(tensors), info);
    std::vector<std::string> args{"calibrate", "x.npy", "-o", "cli.json"};
    if (!preset.empty()) args.insert(args.end(), {"--preset", preset});
    ok(args);
    EXPECT_EQ(read_file(path("cli.json")), read_file(path("lib.json")));
  }
}

// qtool mixed with each kind of budget vs plan_within_budget over the default candidates.
TEST_F(CliLibraryParity, MixedBudgets) {
  const std::string silero = std::string(QK_SOURCE_DIR) + "/examples/data/silero_vad_v5_16k";
  const MixedWorkload work = open_mixed_workload({silero});
  const auto layers = measure_sensitivity(work.layers, parse_candidates(kDefaultCandidates));
  struct Case {
    Budget budget;
    std::vector<std::string> flags;
  };
  for (const Case& c : {Case{{BudgetKind::kAverageBits, 4}, {"--budget-bits", "4"}},
                        Case{{BudgetKind::kBytes, 200000}, {"--budget-bytes", "200000"}},
                        Case{{BudgetKind::kMaxError, 1e-6}, {"--max-error", "1e-6"}}}) {
    SCOPED_TRACE(c.flags.front());
    write_plan(plan_within_budget(layers, work.files, c.budget), path("lib.json").string());
    std::vector<std::string> args{"mixed", silero, "-o", "cli.json"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    ok(args);
    EXPECT_EQ(read_file(path("cli.json")), read_file(path("lib.json")));
  }
  // An unreachable threshold fails the same way in both, in MSE.
  std::string library_error;
  try {
    plan_within_budget(layers, work.files, {BudgetKind::kMaxError, 1e-12});
  } catch (const Error& e) {
    library_error = e.what();
  }
  EXPECT_THAT(library_error, testing::StartsWith("no plan keeps the total weight MSE within 1e-12"));
  expect_error_line(qtool({"mixed", silero, "--max-error", "1e-12", "-o", "cli2.json"}), "", library_error);
}

}  // namespace
}  // namespace qk::cli_test
