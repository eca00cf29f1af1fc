// Calibration in memory: the results of a set of observers, merging saved observers, and validating
// calibrated parameters against held-out data. Calibration over files and the calib.json format:
// files/calibration_file.hpp.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "quantkit/core/float_traits.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/observe/observer.hpp"

namespace qk {

using ObserverMap = std::map<std::string, Observer>;
using ResultMap = std::map<std::string, CalibrationResult>;

// Every observer's result (entropy and mse search here: compute once, then write and print). Errors name
// the tensor.
ResultMap calibration_results(const ObserverMap& tensors);

// Merges `part` into `merged` tensor by tensor (tensors present in only one are kept as they are). Same
// settings are required; see Observer::merge. Errors start with `label` (e.g. the file `part` came from).
void merge_observers(ObserverMap& merged, ObserverMap part, const std::string& label);

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

// The held-out statistics of one tensor under its calibrated parameters.
struct HeldOutTensor {
  std::optional<Observer> observer;  // the calibration's method on the held-out data
  std::uint64_t count = 0;
  std::uint64_t clipped = 0;
  double signal = 0.0;
  double noise = 0.0;
};

// Validation of a calibration against held-out batches fed by tensor name: each tensor's clip range on the
// held-out data against the calibrated one, the fraction the calibrated parameters clip, and the SQNR.
class HeldOutValidation {
 public:
  // calibration: the saved observers; params: each tensor's stored parameters. Throws for a negative
  // max_mismatch.
  HeldOutValidation(ObserverMap calibration, std::map<std::string, QuantParams> params,
                    double max_mismatch = 0.2);
  // One held-out batch of tensor `name` (half, float or double); a name the calibration does not know is
  // recorded as not calibrated. Throws on NaN/Inf and on a shape the calibration does not fit.
  template <QuantFloat T>
  void observe(const std::string& name, TensorView<const T> x);
  bool knows(const std::string& name) const { return calibration_.count(name) != 0; }
  void mark_unknown(const std::string& name) { unknown_.insert(name); }
  ValidationReport report() const;

 private:
  ObserverMap calibration_;
  std::map<std::string, QuantParams> params_;
  double max_mismatch_;
  std::map<std::string, HeldOutTensor> held_;
  std::set<std::string> unknown_;
};

}  // namespace qk
