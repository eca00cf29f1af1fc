// Internal to src/files: the GGUF budget planner (files/gguf_quant.hpp, GgufBudget).
#pragma once

#include "model_tensors.hpp"
#include "quantkit/files/gguf_quant.hpp"
#include "quantkit/io/gguf.hpp"

namespace qk::detail {

// Measures every candidate type's error on every free tensor (rank >= 2, no pattern pins it), then
// chooses the types that minimise the total error within options.budget. `layout` is the output's
// (its data offset and alignment do not depend on the types). Fills report.tensors[i].to,
// candidate_errors and signal, and report.total_error and budget_bytes; throws when no choice fits,
// naming the smallest budget that would. progress hears fractions of the measuring.
void plan_within_budget(const ModelTensors& m, const GgufQuantOptions& options,
                        const io::GgufWriter::Layout& layout, GgufQuantReport& report,
                        const ProgressFn& progress);

}  // namespace qk::detail
