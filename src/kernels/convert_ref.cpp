// Scalar float32 <-> binary16 / bfloat16 conversions (core/half.hpp's rules) and their registries.
#include <array>

#include "quantkit/core/half.hpp"
#include "quantkit/kernels/convert_kernels.hpp"

namespace qk::kernels {

void f32_to_f16_ref(const float* x, std::int64_t n, std::uint16_t* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = float_to_half_bits(x[i]);
}
void f16_to_f32_ref(const std::uint16_t* x, std::int64_t n, float* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = half_bits_to_float(x[i]);
}
void f32_to_bf16_ref(const float* x, std::int64_t n, std::uint16_t* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = float_to_bfloat16_bits(x[i]);
}
void bf16_to_f32_ref(const std::uint16_t* x, std::int64_t n, float* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = bfloat16_bits_to_float(x[i]);
}

namespace {
constexpr std::array kToF16 = {
    KernelVariant<F32ToBits16Fn>{Isa::kScalar, "scalar", f32_to_f16_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<F32ToBits16Fn>{Isa::kAvx2, "avx2", f32_to_f16_avx2},
#endif
};
constexpr std::array kFromF16 = {
    KernelVariant<Bits16ToF32Fn>{Isa::kScalar, "scalar", f16_to_f32_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<Bits16ToF32Fn>{Isa::kAvx2, "avx2", f16_to_f32_avx2},
#endif
};
constexpr std::array kToBf16 = {
    KernelVariant<F32ToBits16Fn>{Isa::kScalar, "scalar", f32_to_bf16_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<F32ToBits16Fn>{Isa::kAvx2, "avx2", f32_to_bf16_avx2},
#endif
};
constexpr std::array kFromBf16 = {
    KernelVariant<Bits16ToF32Fn>{Isa::kScalar, "scalar", bf16_to_f32_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<Bits16ToF32Fn>{Isa::kAvx2, "avx2", bf16_to_f32_avx2},
#endif
};
}  // namespace

std::span<const KernelVariant<F32ToBits16Fn>> f32_to_f16_variants() { return kToF16; }
std::span<const KernelVariant<Bits16ToF32Fn>> f16_to_f32_variants() { return kFromF16; }
std::span<const KernelVariant<F32ToBits16Fn>> f32_to_bf16_variants() { return kToBf16; }
std::span<const KernelVariant<Bits16ToF32Fn>> bf16_to_f32_variants() { return kFromBf16; }

void f32_to_f16(const float* x, std::int64_t n, std::uint16_t* out) {
  static const F32ToBits16Fn fn = select(f32_to_f16_variants());
  fn(x, n, out);
}
void f16_to_f32(const std::uint16_t* x, std::int64_t n, float* out) {
  static const Bits16ToF32Fn fn = select(f16_to_f32_variants());
  fn(x, n, out);
}
void f32_to_bf16(const float* x, std::int64_t n, std::uint16_t* out) {
  static const F32ToBits16Fn fn = select(f32_to_bf16_variants());
  fn(x, n, out);
}
void bf16_to_f32(const std::uint16_t* x, std::int64_t n, float* out) {
  static const Bits16ToF32Fn fn = select(bf16_to_f32_variants());
  fn(x, n, out);
}

}  // namespace qk::kernels
