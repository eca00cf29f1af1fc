// Scalar reference of the min/max kernel.
#include <algorithm>

#include "quantkit/kernels/minmax_kernels.hpp"

namespace qk::kernels {

void minmax_f32_ref(const float* x, std::int64_t n, float* lo, float* hi) {
  float a = *lo, b = *hi;
  for (std::int64_t i = 0; i < n; ++i) {
    a = std::min(a, x[i]);
    b = std::max(b, x[i]);
  }
  *lo = a;
  *hi = b;
}

}  // namespace qk::kernels
