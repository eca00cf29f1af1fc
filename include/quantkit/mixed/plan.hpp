// A mixed-precision plan: one format per layer of a set of .npy weight files, as chosen by select_formats,
// and its totals. The plan file (JSON) and applying a plan to the files: files/plan_file.hpp.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "quantkit/core/tensor_view.hpp"
#include "quantkit/mixed/candidate.hpp"
#include "quantkit/mixed/selection.hpp"

namespace qk {

struct PlanLayer {
  std::string name;
  std::string file;  // resolved path of the layer's float .npy
  Shape shape;
  CandidateFormat format;
  std::uint64_t weights = 0;
  std::uint64_t bytes = 0;
  double error = 0;
  double mse = 0;
  double sqnr_db = 0;
  std::string pinned_by;
  // With activations: 10 log10(||X W^T||^2 / ||X (W - Wq)^T||^2) (selection.hpp, output_sqnr_db); NaN
  // without, +inf for an exact format.
  double output_sqnr_db = std::numeric_limits<double>::quiet_NaN();
};

struct Plan {
  BudgetKind objective = BudgetKind::kBytes;
  double budget = 0;
  std::string error_measure = "weight-sse";
  double suboptimality_bound = 0;
  std::vector<PlanLayer> layers;

  std::uint64_t total_weights() const;
  std::uint64_t total_bytes() const;
  double average_bits() const;
  double total_error() const;
  double total_mse() const;  // weight-weighted mean of the layers' MSE
};

// The plan of a selection over layers (files[i] is layer i's .npy).
Plan make_plan(const std::vector<LayerSensitivity>& layers, const std::vector<std::string>& files,
               const Selection& selection, const Budget& budget, const std::string& error_measure);

}  // namespace qk
