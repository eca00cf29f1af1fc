// Calibration over files: observe every float array of a set of .npy / .npz inputs batch by batch, save
// the result and the observers' state as calib.json, merge saved calibrations, read stored parameters, and
// validate a saved calibration against held-out files. The math is calib/calibration.hpp's.
//
// Inputs: `x.npy` is the tensor named `x` (the file stem); `NAME=x.npy` is a batch of tensor NAME;
// `a.npz` holds one tensor per member, named by its key; `a.npz:key` takes that member only. The same name
// in several inputs means several batches of one tensor (e.g. one .npz of activations per calibration
// batch, or fc1=batch0.npy fc1=batch1.npy).
#pragma once

#include <string>
#include <vector>

#include "quantkit/calib/calibration.hpp"
#include "quantkit/core/progress.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/observe/observer.hpp"

namespace qk {

// Every float (float16/32/64) array of the inputs, observed with `config`. Throws naming the input and the
// tensor on NaN/Inf, an empty array, a non-float array, or batches whose shapes disagree. progress gets the
// fraction of inputs read.
ObserverMap calibrate_files(const std::vector<std::string>& inputs, const ObserverConfig& config,
                            const ProgressFn& progress = {});

struct CalibrationFileInfo {
  std::string preset;                // empty when none was used
  bool dynamic_activations = false;  // the preset computes activation parameters at run time
};

// calib.json: per tensor, the method and spec, the observed and clip ranges, the scales and zero points,
// the counts and fraction clipped, and the observer state (for merging). Written atomically.
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

ValidationReport validate_calibration(const std::string& calib_path, const std::vector<std::string>& inputs,
                                      double max_mismatch = 0.2, const ProgressFn& progress = {});

}  // namespace qk
