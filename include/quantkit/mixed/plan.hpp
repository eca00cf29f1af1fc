// Mixed-precision plan files (JSON) and their application: one format per layer of a set of .npy
// weight files, as chosen by select_formats, written so that `qtool quantize --plan` can apply it later.
//
// plan.json: {"format": "quantkit.mixed-plan/1", "objective": "bytes"|"average-bits"|"max-error",
//   "budget": number, "error_measure": "weight-sse"|"task-metric", "suboptimality_bound": number,
//   "layers": [{"name", "file", "shape", "format" ("4", "4g32", "fp16", ...), "bits", "granularity",
//               "group_size", "weights", "bytes", "error", "mse", "sqnr_db", "pinned_by"}],
//   "totals": {"weights", "bytes", "average_bits", "error", "mse", "sqnr_db"}}
// `file` is relative to the plan's folder when the plan was written next to the weights, else absolute.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quantkit/core/tensor_view.hpp"
#include "quantkit/io/manifest.hpp"
#include "quantkit/mixed/candidate.hpp"
#include "quantkit/mixed/selection.hpp"

namespace qk {

inline constexpr const char* kMixedPlanFormat = "quantkit.mixed-plan/1";

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

// Writes atomically; layer files are stored relative to the plan's folder when they lie under it.
void write_plan(const Plan& plan, const std::string& path);
std::string plan_to_json(const Plan& plan, const std::string& relative_to = "");
// Reads and validates a plan: every field present and typed, formats parseable, names unique, files
// present and of the recorded shape. Errors name the plan file and the layer.
Plan read_plan(const std::string& path);

// A manifest or a list of .npy files -> named layers (name = manifest name or file stem).
std::vector<io::ManifestLayer> layers_from_inputs(const std::vector<std::string>& inputs);

// Quantizes every layer of a plan into out_dir: integer formats as quantized .npz files
// (io/qfile.hpp, `<name>.npz`), fp16 as float16 `<name>.npy`, fp32 as a float32 copy, plus a
// manifest.json listing name, file, shape and format. File names are the layer names with characters
// outside [A-Za-z0-9._-] replaced by '_'. Each file is written atomically; the manifest last. No output
// may be one of the layer files or of `protect` (e.g. the input manifest): checked before anything is
// written. Returns the bytes written.
std::uint64_t apply_plan(const Plan& plan, const std::string& out_dir,
                         const std::vector<std::string>& protect = {});

}  // namespace qk
