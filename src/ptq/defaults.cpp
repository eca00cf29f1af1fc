// quantkit's default specs (ptq/defaults.hpp).
#include "quantkit/ptq/defaults.hpp"

namespace qk {

QuantSpec default_activation_spec() {
  QuantSpec spec;
  spec.bits = 8;
  spec.is_signed = true;
  spec.scheme = Scheme::kSymmetric;
  spec.granularity = Granularity::kPerTensor;
  return spec;
}

QuantSpec default_codebook_spec(ElementFormat element, int rank) {
  QuantSpec spec = default_weight_spec(rank);
  if (element == ElementFormat::kNf4) {
    spec.granularity = Granularity::kPerGroup;
    spec.group_size = kNf4DefaultGroupSize;
  }
  return spec;
}

}  // namespace qk
