// The layers a mixed-precision plan is chosen for, read from a manifest (or its folder) or from .npy
// files, with the paths no output of the run may replace, and the input activations of the layers that
// have them (reduced to their Gram matrices, mixed/output_error.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "quantkit/files/manifest.hpp"
#include "quantkit/mixed/plan.hpp"
#include "quantkit/mixed/selection.hpp"

namespace qk {

// Input activations of one layer: a .npy of shape [rows, in] or [..., in] (e.g. [batch, seq, hidden]),
// in = prod(shape[1:]) of the layer's weights. Text form: "LAYER=FILE".
struct ActivationFile {
  std::string layer;
  std::string file;
};
ActivationFile parse_activation_file(const std::string& text);

struct MixedWorkload {
  MixedWorkload() = default;
  // `layers` views the weights `loaded` owns and the Gram matrices `grams` owns: a move keeps the views
  // valid, a copy would not.
  MixedWorkload(const MixedWorkload&) = delete;
  MixedWorkload& operator=(const MixedWorkload&) = delete;
  MixedWorkload(MixedWorkload&&) noexcept = default;
  MixedWorkload& operator=(MixedWorkload&&) noexcept = default;

  std::vector<WeightLayer> loaded;         // owns the weights that `layers` views
  std::vector<std::vector<double>> grams;  // per layer, X^T X of its activations; empty without
  std::vector<LayerInput> layers;
  std::vector<std::string> files;             // layer i's weight file
  std::vector<std::string> activation_files;  // layer i's activations; empty without
  std::uint64_t total_weights = 0;
  // The inputs, the manifest inside an input folder, every weight and activation file: no output may
  // be one of them.
  std::vector<std::string> protect;

  bool has_activations() const;
};

// Lists the layers, checks that `output` (the plan file; empty: none) replaces no input, then loads every
// layer as float32 and rejects NaN/Inf naming the file. Activations come from `acts` and from an "acts"
// field of a manifest's layer (a path relative to the manifest); one layer given twice, a name that is no
// layer, a file of the wrong width or with NaN/Inf is an error naming the layer and the file. The
// workload may be moved; `layers` stays valid.
MixedWorkload open_mixed_workload(const std::vector<std::string>& inputs, const std::string& output = "",
                                  const std::vector<ActivationFile>& acts = {});

// A run's report as JSON text: "weights", "error_measure", per layer its candidates ("format", "bytes",
// "error", "mse", "sqnr_db", and "output_sqnr_db" with activations), the "tradeoff" curve and the
// "uniform" plans (each with "fits_budget" when a budget is given; "mse" = error / weights under
// weight-sse), and the "plan" (files/plan_file.hpp) when there is one.
struct MixedReport {
  const std::vector<LayerSensitivity>* layers = nullptr;
  std::string error_measure = "weight-sse";
  std::vector<TradeoffPoint> curve;
  std::vector<std::pair<std::string, Selection>> uniform;
  std::optional<Budget> solver_budget;
  std::optional<Plan> plan;
};
std::string mixed_report_json(const MixedReport& report);

}  // namespace qk
