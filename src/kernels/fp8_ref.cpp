// FP8 dequantize: the scalar references (a 256-entry table built from core/fp8.hpp's exact decode), the
// registries and the dispatched entry point.
#include <array>

#include "quantkit/core/error.hpp"
#include "quantkit/kernels/fp8_kernels.hpp"

namespace qk::kernels {

namespace {

template <Fp8Format F>
const std::array<float, 256>& decode_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c)
      t[static_cast<std::size_t>(c)] = fp8_to_float(static_cast<std::uint8_t>(c), F);
    return t;
  }();
  return table;
}

template <Fp8Format F>
void dequantize_ref(const std::uint8_t* codes, std::int64_t n, float scale, float* out) {
  const std::array<float, 256>& table = decode_table<F>();
  for (std::int64_t i = 0; i < n; ++i) out[i] = table[codes[i]] * scale;
}

constexpr std::array kE4m3 = {
    KernelVariant<DequantizeFp8Fn>{Isa::kScalar, "scalar", dequantize_e4m3_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<DequantizeFp8Fn>{Isa::kAvx2, "avx2", dequantize_e4m3_avx2},
#endif
};
constexpr std::array kE5m2 = {
    KernelVariant<DequantizeFp8Fn>{Isa::kScalar, "scalar", dequantize_e5m2_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<DequantizeFp8Fn>{Isa::kAvx2, "avx2", dequantize_e5m2_avx2},
#endif
};

}  // namespace

void dequantize_e4m3_ref(const std::uint8_t* codes, std::int64_t n, float scale, float* out) {
  dequantize_ref<Fp8Format::kE4M3>(codes, n, scale, out);
}
void dequantize_e5m2_ref(const std::uint8_t* codes, std::int64_t n, float scale, float* out) {
  dequantize_ref<Fp8Format::kE5M2>(codes, n, scale, out);
}

std::span<const KernelVariant<DequantizeFp8Fn>> dequantize_fp8_variants(Fp8Format format) {
  if (format == Fp8Format::kE4M3) return kE4m3;
  return kE5m2;
}

void dequantize_fp8(std::span<const std::uint8_t> codes, Fp8Format format, float scale,
                    std::span<float> out) {
  if (codes.size() != out.size()) throw Error("dequantize_fp8: codes and output differ in size");
  static const DequantizeFp8Fn e4m3 = select(dequantize_fp8_variants(Fp8Format::kE4M3));
  static const DequantizeFp8Fn e5m2 = select(dequantize_fp8_variants(Fp8Format::kE5M2));
  (format == Fp8Format::kE4M3 ? e4m3 : e5m2)(codes.data(), static_cast<std::int64_t>(codes.size()), scale,
                                             out.data());
}

}  // namespace qk::kernels
