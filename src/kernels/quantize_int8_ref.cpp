// Scalar reference of the quantize kernels: exactly core/quantize.hpp's quantize_value, element by element.
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/quantize_kernels.hpp"

namespace qk::kernels {

namespace {
template <class Q>
void quantize_ref(const float* x, std::int64_t n, QuantizeRun run, Q* out) {
  const QRange r{run.qmin, run.qmax};
  for (std::int64_t i = 0; i < n; ++i)
    out[i] = static_cast<Q>(quantize_value<float>(x[i], run.inv_scale, run.zero_point, r));
}
}  // namespace

void quantize_f32_i8_ref(const float* x, std::int64_t n, QuantizeRun run, std::int8_t* out) {
  quantize_ref(x, n, run, out);
}
void quantize_f32_u8_ref(const float* x, std::int64_t n, QuantizeRun run, std::uint8_t* out) {
  quantize_ref(x, n, run, out);
}

}  // namespace qk::kernels
