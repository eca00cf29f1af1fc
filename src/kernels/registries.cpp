// Every kernel family's registry, in one place: {isa, name, function, tile}, scalar first, then by ISA.
// These tables drive dispatch (select() picks the last entry the active ISA allows), the testers in
// tests/kernels/ and bench/bench_gemm.cpp. Adding a variant is one line here, one declaration in
// isa_variants.hpp and its <op>_<format>_<isa>.cpp in src/CMakeLists.txt's object library for that ISA.
#include "isa_variants.hpp"
#include "quantkit/kernels/block_kernels.hpp"
#include "quantkit/kernels/convert_kernels.hpp"
#include "quantkit/kernels/dequantize_kernels.hpp"
#include "quantkit/kernels/fp8_kernels.hpp"
#include "quantkit/kernels/gemm_kernels.hpp"
#include "quantkit/kernels/ggml_gemv.hpp"
#include "quantkit/kernels/minmax_kernels.hpp"
#include "quantkit/kernels/quantize_kernels.hpp"
#include "quantkit/kernels/rowwise_kernels.hpp"

namespace qk::kernels {

namespace {

constexpr bool kX86 =
#if defined(__x86_64__) || defined(_M_X64)
    true;
#else
    false;
#endif

// The tiles say what one step of each variant covers (see KernelTile); scalar loops step by one.
constexpr KernelTile kScalarTile{};
// NF4: the SIMD variants step by a group of kNf4SimdGroup weights.
constexpr KernelTile kNf4Tile{.elements = kNf4SimdGroup};
constexpr KernelTile kQ4dqBlock{.elements = BlockQ4DQ::kWeights};

constexpr KernelVariant<QuantizeToI8Fn> kQuantizeI8[] = {
    {Isa::kScalar, "scalar", quantize_f32_i8_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", quantize_f32_i8_avx2, {.elements = 32}},
#endif
};
constexpr KernelVariant<QuantizeToU8Fn> kQuantizeU8[] = {
    {Isa::kScalar, "scalar", quantize_f32_u8_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", quantize_f32_u8_avx2, {.elements = 32}},
#endif
};

constexpr KernelVariant<DequantizeI8Fn> kDequantizeI8[] = {
    {Isa::kScalar, "scalar", dequantize_i8_f32_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", dequantize_i8_f32_avx2, {.elements = 32}},
#endif
};
constexpr KernelVariant<DequantizeU8Fn> kDequantizeU8[] = {
    {Isa::kScalar, "scalar", dequantize_u8_f32_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", dequantize_u8_f32_avx2, {.elements = 32}},
#endif
};

constexpr KernelVariant<MinMaxFn> kMinMax[] = {
    {Isa::kScalar, "scalar", minmax_f32_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", minmax_f32_avx2, {.elements = 32}},
#endif
};

constexpr KernelVariant<F32ToBits16Fn> kToF16[] = {
    {Isa::kScalar, "scalar", f32_to_f16_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", f32_to_f16_avx2, {.elements = 8}},
#endif
};
constexpr KernelVariant<Bits16ToF32Fn> kFromF16[] = {
    {Isa::kScalar, "scalar", f16_to_f32_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", f16_to_f32_avx2, {.elements = 8}},
#endif
};
constexpr KernelVariant<F32ToBits16Fn> kToBf16[] = {
    {Isa::kScalar, "scalar", f32_to_bf16_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", f32_to_bf16_avx2, {.elements = 16}},
#endif
};
constexpr KernelVariant<Bits16ToF32Fn> kFromBf16[] = {
    {Isa::kScalar, "scalar", bf16_to_f32_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", bf16_to_f32_avx2, {.elements = 8}},
#endif
};

constexpr KernelVariant<RowwiseDequantizeFn> kRowwiseU8[] = {
    {Isa::kScalar, "scalar", rowwise_dequantize_u8_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", rowwise_dequantize_u8_avx2, {.elements = 16}},
#endif
};
constexpr KernelVariant<RowwiseGatherFn> kRowwiseGatherU8[] = {
    {Isa::kScalar, "scalar", rowwise_gather_u8_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", rowwise_gather_u8_avx2, {.elements = 16}},
    {Isa::kAvx512Vnni, "avx512", rowwise_gather_u8_avx512, {.elements = 16}},
#endif
};
constexpr KernelVariant<RowwiseDequantizeFn> kRowwiseU4[] = {
    {Isa::kScalar, "scalar", rowwise_dequantize_u4_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", rowwise_dequantize_u4_avx2, {.elements = 16}},
#endif
};

constexpr KernelVariant<DequantizeFp8Fn> kE4m3[] = {
    {Isa::kScalar, "scalar", dequantize_e4m3_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", dequantize_e4m3_avx2, {.elements = 8}},
#endif
};
constexpr KernelVariant<DequantizeFp8Fn> kE5m2[] = {
    {Isa::kScalar, "scalar", dequantize_e5m2_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", dequantize_e5m2_avx2, {.elements = 8}},
#endif
};

constexpr KernelVariant<DequantizeNf4Fn> kDequantizeNf4[] = {
    {Isa::kScalar, "scalar", dequantize_nf4_ref, kNf4Tile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", dequantize_nf4_avx2, kNf4Tile},
#endif
};
constexpr KernelVariant<DequantizeQ4dqFn> kDequantizeQ4dq[] = {
    {Isa::kScalar, "scalar", dequantize_q4dq_ref, kQ4dqBlock},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", dequantize_q4dq_avx2, kQ4dqBlock},
#endif
};
constexpr KernelVariant<GemvNf4Fn> kGemvNf4[] = {
    {Isa::kScalar, "scalar", gemv_nf4_ref, kNf4Tile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", gemv_nf4_avx2, kNf4Tile},
    {Isa::kAvx512Vnni, "avx512", gemv_nf4_avx512, kNf4Tile},
#endif
};
constexpr KernelVariant<GemvQ4dqFn> kGemvQ4dq[] = {
    {Isa::kScalar, "scalar", gemv_q4dq_ref, kQ4dqBlock},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", gemv_q4dq_avx2, kQ4dqBlock},
    {Isa::kAvx512Vnni, "avx512", gemv_q4dq_avx512, kQ4dqBlock},
#endif
};

// ggml's blocks (one step: a block of 32, or a super-block of 256).
constexpr KernelVariant<GemvQ8_0Fn> kGemvQ8_0[] = {
    {Isa::kScalar, "scalar", gemv_q8_0_ref, {.elements = ggml::kBlock}},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", gemv_q8_0_avx2, {.elements = ggml::kBlock}},
    {Isa::kAvx512Vnni, "avx512vnni", gemv_q8_0_avx512vnni, {.elements = ggml::kBlock}},
#endif
};
constexpr KernelVariant<GemvQ4_0Fn> kGemvQ4_0[] = {
    {Isa::kScalar, "scalar", gemv_q4_0_ref, {.elements = ggml::kBlock}},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", gemv_q4_0_avx2, {.elements = ggml::kBlock}},
    {Isa::kAvx512Vnni, "avx512vnni", gemv_q4_0_avx512vnni, {.elements = ggml::kBlock}},
#endif
};
constexpr KernelVariant<GemvQ4_KFn> kGemvQ4_K[] = {
    {Isa::kScalar, "scalar", gemv_q4_k_ref, {.elements = ggml::kSuperBlock}},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", gemv_q4_k_avx2, {.elements = ggml::kSuperBlock}},
    {Isa::kAvx512Vnni, "avx512vnni", gemv_q4_k_avx512vnni, {.elements = ggml::kSuperBlock}},
#endif
};

// GEMM tiles: rows of W x rows of X per register tile, columns per step (gemm_*_<isa>.cpp). Eigen blocks
// by itself; its tiles (one SSE / AVX vector of columns) only choose the sizes it is tested on.
constexpr KernelVariant<GemmFp32Fn> kGemmFp32[] = {
    {Isa::kScalar, "eigen", gemm_fp32_eigen, {.rows = 4, .batch = 4, .elements = 4}},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "eigen-avx2", gemm_fp32_eigen_avx2, {.rows = 4, .batch = 4, .elements = 8}},
#endif
};
constexpr KernelVariant<GemmFp16Fn> kGemmFp16[] = {
    {Isa::kScalar, "scalar", gemm_fp16_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", gemm_fp16_avx2, {.rows = 4, .batch = 2, .elements = 8}},
    // Needs AVX-512 F only; registered at the AVX-512 level quantkit dispatches on (which includes VNNI).
    {Isa::kAvx512Vnni, "avx512", gemm_fp16_avx512, {.rows = 4, .batch = 4, .elements = 16}},
#endif
};
constexpr KernelVariant<GemmInt8Fn> kGemmInt8[] = {
    {Isa::kScalar, "scalar", gemm_int8_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", gemm_int8_avx2, {.rows = 4, .batch = 2, .elements = 32}},
    {Isa::kAvx512Vnni, "avx512vnni", gemm_int8_avx512vnni, {.rows = 4, .batch = 4, .elements = 64}},
#endif
};
constexpr KernelVariant<GemmInt8FloatFn> kGemmInt8Float[] = {
    {Isa::kScalar, "scalar", gemm_int8_float_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", gemm_int8_float_avx2, {.rows = 4, .batch = 2, .elements = 8}},
#endif
};
constexpr KernelVariant<GemmInt4Fn> kGemmInt4[] = {
    {Isa::kScalar, "scalar", gemm_int4_ref, kScalarTile},
#if defined(__x86_64__) || defined(_M_X64)
    {Isa::kAvx2, "avx2", gemm_int4_avx2, {.rows = 2, .batch = 2, .elements = 64}},
    {Isa::kAvx512Vnni, "avx512vnni", gemm_int4_avx512vnni, {.rows = 3, .batch = 4, .elements = 128}},
#endif
};
static_assert(kX86 || std::size(kGemmInt8) == 1, "per-ISA variants are registered on x86 only");

}  // namespace

std::span<const KernelVariant<QuantizeToI8Fn>> quantize_i8_variants() { return kQuantizeI8; }
std::span<const KernelVariant<QuantizeToU8Fn>> quantize_u8_variants() { return kQuantizeU8; }
std::span<const KernelVariant<DequantizeI8Fn>> dequantize_i8_variants() { return kDequantizeI8; }
std::span<const KernelVariant<DequantizeU8Fn>> dequantize_u8_variants() { return kDequantizeU8; }
std::span<const KernelVariant<MinMaxFn>> minmax_variants() { return kMinMax; }
std::span<const KernelVariant<F32ToBits16Fn>> f32_to_f16_variants() { return kToF16; }
std::span<const KernelVariant<Bits16ToF32Fn>> f16_to_f32_variants() { return kFromF16; }
std::span<const KernelVariant<F32ToBits16Fn>> f32_to_bf16_variants() { return kToBf16; }
std::span<const KernelVariant<Bits16ToF32Fn>> bf16_to_f32_variants() { return kFromBf16; }
std::span<const KernelVariant<RowwiseDequantizeFn>> rowwise_dequantize_u8_variants() { return kRowwiseU8; }
std::span<const KernelVariant<RowwiseDequantizeFn>> rowwise_dequantize_u4_variants() { return kRowwiseU4; }
std::span<const KernelVariant<RowwiseGatherFn>> rowwise_gather_u8_variants() { return kRowwiseGatherU8; }
std::span<const KernelVariant<DequantizeFp8Fn>> dequantize_fp8_variants(Fp8Format format) {
  if (format == Fp8Format::kE4M3) return kE4m3;
  return kE5m2;
}
std::span<const KernelVariant<DequantizeNf4Fn>> dequantize_nf4_variants() { return kDequantizeNf4; }
std::span<const KernelVariant<DequantizeQ4dqFn>> dequantize_q4dq_variants() { return kDequantizeQ4dq; }
std::span<const KernelVariant<GemvNf4Fn>> gemv_nf4_variants() { return kGemvNf4; }
std::span<const KernelVariant<GemvQ4dqFn>> gemv_q4dq_variants() { return kGemvQ4dq; }
std::span<const KernelVariant<GemvQ8_0Fn>> gemv_q8_0_variants() { return kGemvQ8_0; }
std::span<const KernelVariant<GemvQ4_0Fn>> gemv_q4_0_variants() { return kGemvQ4_0; }
std::span<const KernelVariant<GemvQ4_KFn>> gemv_q4_k_variants() { return kGemvQ4_K; }
std::span<const KernelVariant<GemmFp32Fn>> gemm_fp32_variants() { return kGemmFp32; }
std::span<const KernelVariant<GemmFp16Fn>> gemm_fp16_variants() { return kGemmFp16; }
std::span<const KernelVariant<GemmInt8Fn>> gemm_int8_variants() { return kGemmInt8; }
std::span<const KernelVariant<GemmInt8FloatFn>> gemm_int8_float_variants() { return kGemmInt8Float; }
std::span<const KernelVariant<GemmInt4Fn>> gemm_int4_variants() { return kGemmInt4; }

}  // namespace qk::kernels
