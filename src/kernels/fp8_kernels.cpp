// The dispatched FP8 dequantize (chosen once per format, from registries.cpp).
#include "quantkit/kernels/fp8_kernels.hpp"

#include "quantkit/core/error.hpp"

namespace qk::kernels {

void dequantize_fp8(std::span<const std::uint8_t> codes, Fp8Format format, float scale,
                    std::span<float> out) {
  if (codes.size() != out.size()) throw Error("dequantize_fp8: codes and output differ in size");
  static const DequantizeFp8Fn e4m3 = select(dequantize_fp8_variants(Fp8Format::kE4M3));
  static const DequantizeFp8Fn e5m2 = select(dequantize_fp8_variants(Fp8Format::kE5M2));
  (format == Fp8Format::kE4M3 ? e4m3 : e5m2)(codes.data(), static_cast<std::int64_t>(codes.size()), scale,
                                             out.data());
}

}  // namespace qk::kernels
