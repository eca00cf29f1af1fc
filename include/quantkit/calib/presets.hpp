// Target presets: how a deployment target expects weights and activations to be quantized. The one table
// of them lives in src/calib/presets.cpp; qtool's --preset reads it, explicit options override it.
#pragma once

#include <span>
#include <string>

#include "quantkit/core/spec.hpp"

namespace qk {

struct TargetPreset {
  const char* name;
  const char* target;  // what it stands for
  // Weights: per channel on axis 0 (per tensor for 0-d and 1-d arrays), 8-bit.
  bool weight_signed;
  Scheme weight_scheme;
  // Activations: per tensor, 8-bit.
  bool activation_signed;
  Scheme activation_scheme;
  bool activation_reduce_range;
  bool dynamic_activations;  // parameters computed at run time per batch (calibration only validates)
  const char* note;
};

std::span<const TargetPreset> target_presets();
// Throws naming the known presets when `name` is not one of them.
const TargetPreset& find_preset(const std::string& name);

QuantSpec preset_weight_spec(const TargetPreset& preset, int rank);
QuantSpec preset_activation_spec(const TargetPreset& preset);

// The spec a request starts from before its own settings: the named preset's, or quantkit's default
// (ptq/defaults.hpp) when `preset` is empty. Throws for an unknown preset, as find_preset does.
QuantSpec weight_spec_for_preset(const std::string& preset, int rank);
QuantSpec activation_spec_for_preset(const std::string& preset);

// A human-readable description of a spec ("8-bit signed symmetric per-channel (axis 0), codes [-128, 127]").
std::string describe_spec(const QuantSpec& spec);

}  // namespace qk
