// Registries and dispatch of the dequantize kernels.
#include "quantkit/kernels/dequantize_kernels.hpp"

#include <array>

namespace qk::kernels {

namespace {
constexpr std::array kI8 = {
    KernelVariant<DequantizeI8Fn>{Isa::kScalar, "scalar", dequantize_i8_f32_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<DequantizeI8Fn>{Isa::kAvx2, "avx2", dequantize_i8_f32_avx2},
#endif
};
constexpr std::array kU8 = {
    KernelVariant<DequantizeU8Fn>{Isa::kScalar, "scalar", dequantize_u8_f32_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<DequantizeU8Fn>{Isa::kAvx2, "avx2", dequantize_u8_f32_avx2},
#endif
};
}  // namespace

std::span<const KernelVariant<DequantizeI8Fn>> dequantize_i8_variants() { return kI8; }
std::span<const KernelVariant<DequantizeU8Fn>> dequantize_u8_variants() { return kU8; }

void dequantize_i8_f32(const std::int8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                       float* out) {
  static const DequantizeI8Fn fn = select(dequantize_i8_variants());
  fn(q, n, scale, zero_point, out);
}

void dequantize_u8_f32(const std::uint8_t* q, std::int64_t n, float scale, std::int32_t zero_point,
                       float* out) {
  static const DequantizeU8Fn fn = select(dequantize_u8_variants());
  fn(q, n, scale, zero_point, out);
}

}  // namespace qk::kernels
