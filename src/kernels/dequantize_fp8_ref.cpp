// FP8 dequantize, the scalar references: a 256-entry table built from core/fp8.hpp's exact decode, then
// one float32 multiply.
#include <array>

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

}  // namespace

void dequantize_e4m3_ref(const std::uint8_t* codes, std::int64_t n, float scale, float* out) {
  dequantize_ref<Fp8Format::kE4M3>(codes, n, scale, out);
}
void dequantize_e5m2_ref(const std::uint8_t* codes, std::int64_t n, float scale, float* out) {
  dequantize_ref<Fp8Format::kE5M2>(codes, n, scale, out);
}

}  // namespace qk::kernels
