// The target preset table (README "Target presets" mirrors it).
#include "quantkit/calib/presets.hpp"

#include <array>

#include "quantkit/core/error.hpp"
#include "quantkit/ptq/defaults.hpp"

namespace qk {

namespace {

constexpr std::array<TargetPreset, 5> kPresets{{
    // PyTorch's default qconfig ('x86'/'fbgemm') quantizes activations with HistogramObserver and
    // reduce_range=True, 'qnnpack' with reduce_range=False. A preset sets specs, not the observer, so
    // generic keeps the full 8-bit range (qnnpack's, and what every other runtime expects) and names the
    // method that reproduces torch's observer.
    {"generic", "any runtime (PyTorch default qconfig's dtypes and schemes, full 8-bit activation range)",
     true, Scheme::kSymmetric, false, Scheme::kAffine, false, false,
     "int8 symmetric per-channel weights, uint8 affine per-tensor activations [0, 255] (no reduce_range), "
     "static; the preset does not pick the calibration method (the histogram method is PyTorch's "
     "default HistogramObserver)"},
    {"ane", "Apple Neural Engine (Core ML)", true, Scheme::kSymmetric, true, Scheme::kSymmetric, false, false,
     "int8 symmetric per-channel weights, int8 symmetric per-tensor activations, static only"},
    {"hexagon", "Qualcomm Hexagon DSP/HTP (QNN)", false, Scheme::kAffine, false, Scheme::kAffine, false,
     false,
     "asymmetric uint8 weights (per-channel, or per-tensor), asymmetric uint8 per-tensor activations, "
     "static"},
    {"edgetpu", "Google Edge TPU (TFLite int8)", true, Scheme::kSymmetric, true, Scheme::kAffine, false,
     false, "int8 only: symmetric per-channel weights, asymmetric int8 per-tensor activations, static"},
    {"x86", "FBGEMM / oneDNN (PyTorch x86 and fbgemm backends)", true, Scheme::kSymmetric, false,
     Scheme::kAffine, true, true,
     "int8 symmetric per-channel weights, dynamic uint8 activations with reduce_range (7-bit, [0, 127])"},
}};

}  // namespace

std::span<const TargetPreset> target_presets() { return kPresets; }

const TargetPreset& find_preset(const std::string& name) {
  for (const TargetPreset& p : kPresets)
    if (name == p.name) return p;
  std::string names;
  for (const TargetPreset& p : kPresets) names += std::string(names.empty() ? "" : ", ") + p.name;
  throw Error("unknown preset '" + name + "' (choose " + names + ")");
}

QuantSpec preset_weight_spec(const TargetPreset& preset, int rank) {
  QuantSpec s;
  s.bits = 8;
  s.is_signed = preset.weight_signed;
  s.scheme = preset.weight_scheme;
  s.granularity = rank >= 2 ? Granularity::kPerChannel : Granularity::kPerTensor;
  s.axis = 0;
  return s;
}

QuantSpec preset_activation_spec(const TargetPreset& preset) {
  QuantSpec s;
  s.bits = 8;
  s.is_signed = preset.activation_signed;
  s.scheme = preset.activation_scheme;
  s.reduce_range = preset.activation_reduce_range;
  s.granularity = Granularity::kPerTensor;
  return s;
}

QuantSpec weight_spec_for_preset(const std::string& preset, int rank) {
  return preset.empty() ? default_weight_spec(rank) : preset_weight_spec(find_preset(preset), rank);
}

QuantSpec activation_spec_for_preset(const std::string& preset) {
  return preset.empty() ? default_activation_spec() : preset_activation_spec(find_preset(preset));
}

std::string describe_spec(const QuantSpec& spec) {
  const QRange r = spec.range();
  std::string out = std::to_string(spec.storage_bits()) + "-bit " +
                    (spec.is_signed ? "signed " : "unsigned ") + to_string(spec.scheme) + " " +
                    describe_granularity(spec);
  out += ", codes [" + std::to_string(r.min) + ", " + std::to_string(r.max) + "]";
  if (spec.reduce_range) out += " (reduce_range)";
  return out;
}

}  // namespace qk
