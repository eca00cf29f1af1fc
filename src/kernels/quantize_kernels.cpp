// Registries of the quantize kernels and their dispatch (chosen once, on first use).
#include "quantkit/kernels/quantize_kernels.hpp"

#include <array>

namespace qk::kernels {

namespace {
constexpr std::array kI8 = {
    KernelVariant<QuantizeToI8Fn>{Isa::kScalar, "scalar", quantize_f32_i8_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<QuantizeToI8Fn>{Isa::kAvx2, "avx2", quantize_f32_i8_avx2},
#endif
};
constexpr std::array kU8 = {
    KernelVariant<QuantizeToU8Fn>{Isa::kScalar, "scalar", quantize_f32_u8_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<QuantizeToU8Fn>{Isa::kAvx2, "avx2", quantize_f32_u8_avx2},
#endif
};
}  // namespace

std::span<const KernelVariant<QuantizeToI8Fn>> quantize_i8_variants() { return kI8; }
std::span<const KernelVariant<QuantizeToU8Fn>> quantize_u8_variants() { return kU8; }

void quantize_f32_i8(const float* x, std::int64_t n, QuantizeRun run, std::int8_t* out) {
  static const QuantizeToI8Fn fn = select(quantize_i8_variants());
  fn(x, n, run, out);
}

void quantize_f32_u8(const float* x, std::int64_t n, QuantizeRun run, std::uint8_t* out) {
  static const QuantizeToU8Fn fn = select(quantize_u8_variants());
  fn(x, n, run, out);
}

}  // namespace qk::kernels
