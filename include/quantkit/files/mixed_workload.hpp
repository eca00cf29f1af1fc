// The layers a mixed-precision plan is chosen for, read from a manifest (or its folder) or from .npy
// files, with the paths no output of the run may replace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quantkit/files/manifest.hpp"
#include "quantkit/mixed/selection.hpp"

namespace qk {

struct MixedWorkload {
  MixedWorkload() = default;
  // `layers` views the weights `loaded` owns: a move keeps the views valid, a copy would not.
  MixedWorkload(const MixedWorkload&) = delete;
  MixedWorkload& operator=(const MixedWorkload&) = delete;
  MixedWorkload(MixedWorkload&&) noexcept = default;
  MixedWorkload& operator=(MixedWorkload&&) noexcept = default;

  std::vector<WeightLayer> loaded;  // owns the weights that `layers` views
  std::vector<LayerInput> layers;
  std::vector<std::string> files;  // layer i's weight file
  std::uint64_t total_weights = 0;
  // The inputs, the manifest inside an input folder and every weight file: no output may be one of them.
  std::vector<std::string> protect;
};

// Lists the layers, checks that `output` (the plan file; empty: none) replaces no input, then loads every
// layer as float32 and rejects NaN/Inf naming the file. The workload may be moved; `layers` stays valid.
MixedWorkload open_mixed_workload(const std::vector<std::string>& inputs, const std::string& output = "");

}  // namespace qk
