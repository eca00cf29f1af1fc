// The x86 rowwise_gather_u8 variants' shared step (only for files compiled with -mf16c). Internal
// linkage on purpose, as simd_x86.hpp: each ISA's file gets its own copy.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "rowwise_gather.hpp"

namespace {

// A row's float16 scale (lane 0) and bias (lane 1) as float32. F16C decodes float16 exactly (subnormals
// too, NaN made quiet with its payload), as the reference's half_bits_to_float does.
inline __m128 decode_scale_bias(const std::uint8_t* row, std::int64_t dim) {
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(qk::kernels::detail::scale_bias_bits(row, dim))));
}

}  // namespace
