// Minimum and maximum of a run of finite float32 values (the min/max observer's inner loop). Callers
// reject or filter NaN first. Min and max are exact in any order; only the sign of a zero result may
// differ between variants, which no quantization rule can see (min(v, 0) and max(v, 0) absorb it).
#pragma once

#include <cstdint>
#include <span>

#include "quantkit/kernels/dispatch.hpp"

namespace qk::kernels {

// Updates *lo and *hi with the values of x[0..n).
using MinMaxFn = void (*)(const float* x, std::int64_t n, float* lo, float* hi);

void minmax_f32_ref(const float* x, std::int64_t n, float* lo, float* hi);

std::span<const KernelVariant<MinMaxFn>> minmax_variants();
void minmax_f32(const float* x, std::int64_t n, float* lo, float* hi);

}  // namespace qk::kernels
