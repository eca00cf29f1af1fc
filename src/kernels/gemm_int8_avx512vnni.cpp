// INT8 GEMV/GEMM with uint8 activations (AVX-512 VNNI), gemm_int8_impl.hpp with this policy: vpdpbusd
// multiplies u8 activation codes by s8 weight codes and adds groups of four straight into int32, with no
// int16 step, so every code is exact (no 128 limit as on AVX2). 64 columns per step.
#include <immintrin.h>

#include "gemm_int8_impl.hpp"
#include "isa_variants.hpp"

namespace qk::kernels {

namespace {

struct VnniInt8 {
  using Vec = __m512i;
  static constexpr std::int64_t kBytes = 64;
  static constexpr int kBatchTile = 4;
  static constexpr std::int32_t kMaxExactCode = 255;
  static Vec zero() { return _mm512_setzero_si512(); }
  static Vec load(const void* p) { return _mm512_loadu_si512(p); }
  static Vec dot(Vec acc, Vec x, Vec w) { return _mm512_dpbusd_epi32(acc, x, w); }
  static Vec add(Vec a, Vec b) { return _mm512_add_epi32(a, b); }
  // (GCC 12 warns inside _mm512_reduce_add_epi32, so the halves are added here.)
  static std::int32_t hsum(Vec v) {
    return hsum_epi32(_mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)));
  }
};

}  // namespace

void gemm_int8_avx512vnni(const QuantizedActivations& x, const Int8Weights& w, std::int64_t row_begin,
                          std::int64_t row_end, float* y) {
  int8_run<VnniInt8>(x, w, row_begin, row_end, y);
}

}  // namespace qk::kernels
