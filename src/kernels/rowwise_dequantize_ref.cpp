// Scalar row-wise dequantization (the reference of the SIMD variants) and the registries.
#include <array>

#include "quantkit/kernels/rowwise_kernels.hpp"

namespace qk::kernels {

void rowwise_dequantize_u8_ref(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                               float* out) {
  for (std::int64_t d = 0; d < dim; ++d) out[d] = static_cast<float>(codes[d]) * scale + bias;
}

void rowwise_dequantize_u4_ref(const std::uint8_t* codes, std::int64_t dim, float scale, float bias,
                               float* out) {
  for (std::int64_t d = 0; d < dim; ++d) {
    const unsigned code = (codes[d / 2] >> ((d % 2) * 4)) & 0x0Fu;
    out[d] = static_cast<float>(code) * scale + bias;
  }
}

namespace {
constexpr std::array kU8 = {
    KernelVariant<RowwiseDequantizeFn>{Isa::kScalar, "scalar", rowwise_dequantize_u8_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<RowwiseDequantizeFn>{Isa::kAvx2, "avx2", rowwise_dequantize_u8_avx2},
#endif
};
constexpr std::array kU4 = {
    KernelVariant<RowwiseDequantizeFn>{Isa::kScalar, "scalar", rowwise_dequantize_u4_ref},
#if defined(__x86_64__) || defined(_M_X64)
    KernelVariant<RowwiseDequantizeFn>{Isa::kAvx2, "avx2", rowwise_dequantize_u4_avx2},
#endif
};
}  // namespace

std::span<const KernelVariant<RowwiseDequantizeFn>> rowwise_dequantize_u8_variants() { return kU8; }
std::span<const KernelVariant<RowwiseDequantizeFn>> rowwise_dequantize_u4_variants() { return kU4; }

void rowwise_dequantize_u8(const std::uint8_t* codes, std::int64_t dim, float scale, float bias, float* out) {
  static const RowwiseDequantizeFn fn = select(rowwise_dequantize_u8_variants());
  fn(codes, dim, scale, bias, out);
}
void rowwise_dequantize_u4(const std::uint8_t* codes, std::int64_t dim, float scale, float bias, float* out) {
  static const RowwiseDequantizeFn fn = select(rowwise_dequantize_u4_variants());
  fn(codes, dim, scale, bias, out);
}

}  // namespace qk::kernels
