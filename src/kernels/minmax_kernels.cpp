// Registry and dispatch of the min/max kernel.
#include "quantkit/kernels/minmax_kernels.hpp"

#include <array>

namespace qk::kernels {

namespace {
constexpr std::array kMinMax = {
    KernelVariant<MinMaxFn>{Isa::kScalar, "scalar", minmax_f32_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<MinMaxFn>{Isa::kAvx2, "avx2", minmax_f32_avx2},
#endif
};
}  // namespace

std::span<const KernelVariant<MinMaxFn>> minmax_variants() { return kMinMax; }

void minmax_f32(const float* x, std::int64_t n, float* lo, float* hi) {
  static const MinMaxFn fn = select(minmax_variants());
  fn(x, n, lo, hi);
}

}  // namespace qk::kernels
