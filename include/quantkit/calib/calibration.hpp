// Calibration over files: observe every float array of a set of .npy / .npz inputs batch by batch, save
// the result and the observers' state as calib.json, merge saved calibrations, apply them, and validate
// them against held-out data.
//
// Inputs: `x.npy` is the tensor named `x` (the file stem); `a.npz` holds one tensor per member, named by
// its key; `a.npz:key` takes that member only. The same name in several inputs means several batches of
// one tensor (e.g. one .npz of activations per calibration batch).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "quantkit/core/quantize.hpp"
#include "quantkit/observe/observer.hpp"

namespace qk {

using ObserverMap = std::map<std::string, Observer>;

// Called after each input with (inputs done, inputs in all).
using InputProgress = std::function<void(std::size_t, std::size_t)>;

// Every float (float16/32/64) array of the inputs, observed with `config`. Throws naming the input and the
// tensor on NaN/Inf, an empty array, a non-float array, or batches whose shapes disagree.
ObserverMap calibrate_files(const std::vector<std::string>& inputs, const ObserverConfig& config,
                            const InputProgress& progress = {});

struct CalibrationFileInfo {
  std::string preset;                // empty when none was used
  bool dynamic_activations = false;  // the preset computes activation parameters at run time
};

using ResultMap = std::map<std::string, CalibrationResult>;
// Every observer's result (entropy and mse search here: compute once, then write and print).
ResultMap calibration_results(const ObserverMap& tensors);

// calib.json: per tensor, the method and spec, the observed and clip ranges, the scales and zero points,
// the counts and fraction clipped, and the observer state (for --merge). Written atomically.
void write_calibration(const std::string& path, const ObserverMap& tensors, const ResultMap& results,
                       const CalibrationFileInfo& info = {});
std::string calibration_json(const ObserverMap& tensors, const ResultMap& results,
                             const CalibrationFileInfo& info, bool with_state);

// The observers stored in calibration files (their state), and the files' info.
ObserverMap read_calibration(const std::string& path, CalibrationFileInfo* info = nullptr);

// Merges the states of several calibration files tensor by tensor (tensors present in only some files are
// kept as they are). Same settings are required; see Observer::merge.
ObserverMap merge_calibrations(const std::vector<std::string>& paths, CalibrationFileInfo* info = nullptr);

// The stored scale(s) and zero point(s) of one tensor, with their spec, as written (not recomputed).
struct StoredParams {
  QuantParams params;
  Shape shape;  // of the first calibration batch
  CalibMethod method = CalibMethod::kMinMax;
};
StoredParams read_calibrated_params(const std::string& path, const std::string& tensor);

// --- validation ----------------------------------------------------------------------------------------

struct TensorValidation {
  std::string name;
  bool calibrated = true;  // false: the held-out data has a tensor the calibration does not know
  std::uint64_t count = 0;
  ClipRange calib_range;  // per slot, the worst slot's (the method's clip range)
  ClipRange test_range;   // the same method on the held-out data
  std::int64_t worst_slot = 0;
  // max(|lo_test - lo_calib|, |hi_test - hi_calib|) / (hi_calib - lo_calib), worst slot
  double range_mismatch = 0.0;
  double clipped_fraction = 0.0;  // of held-out values the calibrated parameters saturate (exact count)
  double sqnr_db = 0.0;           // 10 log10(sum x^2 / sum (x - fake_quant(x))^2); +inf when exact
  bool flagged = false;
};

struct ValidationReport {
  double max_mismatch = 0.2;
  std::vector<TensorValidation> tensors;  // held-out tensors, by name
  std::vector<std::string> not_covered;   // calibrated tensors with no held-out data
  bool any_flagged() const;
};

ValidationReport validate_calibration(const std::string& calib_path, const std::vector<std::string>& inputs,
                                      double max_mismatch = 0.2, const InputProgress& progress = {});

}  // namespace qk
