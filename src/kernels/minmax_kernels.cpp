// The dispatched min/max kernel (chosen once, on first use, from registries.cpp).
#include "quantkit/kernels/minmax_kernels.hpp"

namespace qk::kernels {

void minmax_f32(const float* x, std::int64_t n, float* lo, float* hi) {
  static const MinMaxFn fn = select(minmax_variants());
  fn(x, n, lo, hi);
}

}  // namespace qk::kernels
