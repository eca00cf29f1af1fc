// Mixed-precision plan files (JSON) and their application: a plan (mixed/plan.hpp) written so that it can be
// applied to its weight files later.
//
// plan.json: {"format": "quantkit.mixed-plan/1", "objective": "bytes"|"average-bits"|"max-error",
//   "budget": number, "error_measure": "weight-sse"|"output-sse"|"relative"|"task-metric",
//   "suboptimality_bound": number,
//   "layers": [{"name", "file", "shape", "format" ("4", "4g32", "fp16", ...), "bits", "granularity",
//               "group_size", "weights", "bytes", "error", "mse", "sqnr_db", "pinned_by",
//               "output_sqnr_db" (only for a layer given activations; null when exact)}],
//   "totals": {"weights", "bytes", "average_bits", "error", "mse", "sqnr_db"}}
// `file` is relative to the plan's folder when the plan was written next to the weights, else absolute.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quantkit/files/manifest.hpp"
#include "quantkit/mixed/plan.hpp"

namespace qk {

inline constexpr const char* kMixedPlanFormat = "quantkit.mixed-plan/1";

// Writes atomically; layer files are stored relative to the plan's folder when they lie under it.
void write_plan(const Plan& plan, const std::string& path);
std::string plan_to_json(const Plan& plan, const std::string& relative_to = "");
// Reads and validates a plan: every field present and typed, formats parseable, names unique, files
// present and of the recorded shape. Errors name the plan file and the layer.
Plan read_plan(const std::string& path);

// A manifest or a list of .npy files -> named layers (name = manifest name or file stem).
std::vector<ManifestLayer> layers_from_inputs(const std::vector<std::string>& inputs);

// Quantizes every layer of a plan into out_dir: integer formats as quantized .npz files
// (io/qfile.hpp, `<name>.npz`), fp16 as float16 `<name>.npy`, fp32 as a float32 copy, plus a
// manifest.json listing name, file, shape and format. File names are the layer names with characters
// outside [A-Za-z0-9._-] replaced by '_'. Each file is written atomically; the manifest last. No output
// may be one of the layer files or of `protect` (e.g. the input manifest): checked before anything is
// written. Returns the bytes written.
std::uint64_t apply_plan(const Plan& plan, const std::string& out_dir,
                         const std::vector<std::string>& protect = {});

}  // namespace qk
