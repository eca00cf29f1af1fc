// GEMV on ggml's blocks (kernels/ggml_gemv.hpp): every registered variant of Q8_0, Q4_0 and Q4_K, on
// random and edge blocks (all-zero, largest codes, float16 scales at 65504 and subnormal) and awkward
// sizes, (a) against a plain sum of d_w * d_x * (exact integer block dot products) computed here from the
// block layout of ggml-common.h, and (b) against the FP32 product of ggml's dequantized weights within the
// bound the header states; the Q8_K quantizer against ggml's definition; the dispatched entry's checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/variant_test.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/kernels/ggml_gemv.hpp"

namespace qk {
namespace {

using ggml::BlockQ4_0;
using ggml::BlockQ4_K;
using ggml::BlockQ8_0;
using ggml::Type;
using kernels::BlockQ8K;
using kernels::test::VariantName;
using kernels::test::VariantTest;

constexpr double kU = 1.0 / (1 << 23);  // float32's machine epsilon, the unit the bounds are stated in

double h(std::uint16_t bits) { return half_bits_to_float(bits); }

// Float16 scales the blocks draw from: the extremes, subnormals, zero, and ordinary values.
constexpr std::uint16_t kEdgeScales[] = {0x7BFF, 0xFBFF, 0x0001, 0x03FF, 0x8001,
                                         0x0000, 0x2E66, 0x1800, 0x3C00};

// The weight matrix of one case: `rows` rows of `cols` weights as ggml bytes.
struct Matrix {
  Type type;
  std::int64_t rows, cols;
  std::vector<std::byte> bytes;
};

// Blocks of random bytes whose scales are edge values and whose codes are, block by block, random, all
// zero or all at an extreme; or (edges = false) ggml's quantization of Gaussian weights.
Matrix make_matrix(Type type, std::int64_t rows, std::int64_t cols, bool edges, std::mt19937& gen) {
  Matrix m{type, rows, cols,
           std::vector<std::byte>(static_cast<std::size_t>(rows * ggml::row_bytes(type, cols)))};
  if (!edges) {
    std::normal_distribution<float> d(0, 0.05f);
    std::vector<float> w(static_cast<std::size_t>(cols));
    for (std::int64_t r = 0; r < rows; ++r) {
      for (float& v : w) v = d(gen);
      ggml::quantize_row(type, w.data(), cols, m.bytes.data() + r * ggml::row_bytes(type, cols));
    }
    return m;
  }
  std::uniform_int_distribution<int> byte(0, 255), pick(0, std::size(kEdgeScales) - 1), mode(0, 4);
  for (auto& b : m.bytes) b = static_cast<std::byte>(byte(gen));
  const auto scale = [&] { return kEdgeScales[pick(gen)]; };
  const auto fill = [&](void* codes, std::size_t n) {  // mode 0..2: keep random; 3: zeros; 4: 0xFF / 127
    const int k = mode(gen);
    if (k == 3) std::memset(codes, 0, n);
    if (k == 4) std::memset(codes, type == Type::kQ8_0 ? (byte(gen) % 2 ? 0x7F : 0x80) : 0xFF, n);
  };
  const std::int64_t count = rows * cols / ggml::traits(type).block_weights;
  for (std::int64_t i = 0; i < count; ++i) {
    std::byte* p = m.bytes.data() + i * ggml::traits(type).block_bytes;
    if (type == Type::kQ8_0) {
      auto* b = reinterpret_cast<BlockQ8_0*>(p);
      b->d = scale();
      fill(b->qs, sizeof(b->qs));
    } else if (type == Type::kQ4_0) {
      auto* b = reinterpret_cast<BlockQ4_0*>(p);
      b->d = scale();
      fill(b->qs, sizeof(b->qs));
    } else {
      auto* b = reinterpret_cast<BlockQ4_K*>(p);
      b->d = scale();
      b->dmin = scale();
      fill(b->qs, sizeof(b->qs));
      fill(b->scales, sizeof(b->scales));  // 0xFF: every 6-bit scale and min at 63
    }
  }
  return m;
}

// Activations: Gaussian, or with blocks of zeros, of tiny values and of one large value.
std::vector<float> make_x(std::int64_t cols, bool edges, std::mt19937& gen) {
  std::normal_distribution<float> d(0, 1);
  std::vector<float> x(static_cast<std::size_t>(cols));
  for (float& v : x) v = d(gen);
  if (!edges) return x;
  std::uniform_int_distribution<int> mode(0, 4);
  for (std::int64_t b = 0; b < cols / 32; ++b) {
    float* p = x.data() + b * 32;
    switch (mode(gen)) {
      case 0:
        std::fill(p, p + 32, 0.0f);
        break;
      case 1:
        for (int j = 0; j < 32; ++j) p[j] *= 1e-30f;
        break;  // Q8_0: the float16 scale is 0
      case 2:
        for (int j = 0; j < 32; ++j) p[j] *= 1e-38f;
        break;  // Q8_K: -127 / max overflows
      case 3:
        p[b % 32] = 1e6f;
        break;
      default:
        break;
    }
  }
  return x;
}

// One weight's plain description: code times d, minus dmin times min (Q4_K; 0 otherwise).
struct Weight {
  int code;
  double scale;   // fp16(d) * sub-block scale (Q4_K) or fp16(d)
  double offset;  // fp16(dmin) * sub-block min (Q4_K), or 0
};

// The weights of row r from the block layout (ggml-common.h), independently of the library's kernels.
std::vector<Weight> unpack_row(const Matrix& m, std::int64_t r) {
  std::vector<Weight> out(static_cast<std::size_t>(m.cols));
  const std::byte* row = m.bytes.data() + r * ggml::row_bytes(m.type, m.cols);
  for (std::int64_t b = 0; b < m.cols / ggml::traits(m.type).block_weights; ++b) {
    const std::byte* p = row + b * ggml::traits(m.type).block_bytes;
    if (m.type == Type::kQ8_0) {
      const auto* blk = reinterpret_cast<const BlockQ8_0*>(p);
      for (int j = 0; j < 32; ++j) out[b * 32 + j] = {blk->qs[j], h(blk->d), 0};
    } else if (m.type == Type::kQ4_0) {
      const auto* blk = reinterpret_cast<const BlockQ4_0*>(p);
      for (int j = 0; j < 16; ++j) {
        out[b * 32 + j] = {(blk->qs[j] & 15) - 8, h(blk->d), 0};
        out[b * 32 + j + 16] = {(blk->qs[j] >> 4) - 8, h(blk->d), 0};
      }
    } else {
      const auto* blk = reinterpret_cast<const BlockQ4_K*>(p);
      const std::uint8_t* s = blk->scales;
      for (int sub = 0; sub < 8; ++sub) {  // 6-bit scale and min: bytes 0..3 / 4..7, else split over 8..11
        const int sc = sub < 4 ? s[sub] & 63 : (s[sub + 4] & 15) | ((s[sub - 4] >> 6) << 4);
        const int mn = sub < 4 ? s[sub + 4] & 63 : (s[sub + 4] >> 4) | ((s[sub] >> 6) << 4);
        for (int l = 0; l < 32; ++l) {
          const int code = (blk->qs[32 * (sub / 2) + l] >> (4 * (sub % 2))) & 15;
          out[b * 256 + sub * 32 + l] = {code, h(blk->d) * sc, h(blk->dmin) * mn};
        }
      }
    }
  }
  return out;
}

// The quantized activations as (code, scale) per value, and their blocks' raw form for the kernels.
struct Activations {
  std::vector<BlockQ8_0> q8_0;
  std::vector<BlockQ8K> q8_k;
  std::vector<int> code;
  std::vector<double> scale;
};
Activations quantize_x(Type type, const std::vector<float>& x) {
  Activations a;
  const auto n = static_cast<std::int64_t>(x.size());
  a.code.resize(x.size());
  a.scale.resize(x.size());
  if (type == Type::kQ4_K) {
    a.q8_k.resize(x.size() / 256);
    kernels::quantize_row_q8_k(x.data(), n, a.q8_k.data());
    for (std::int64_t j = 0; j < n; ++j) {
      a.code[j] = a.q8_k[j / 256].qs[j % 256];
      a.scale[j] = a.q8_k[j / 256].d;
    }
  } else {
    a.q8_0.resize(x.size() / 32);
    ggml::quantize_row(Type::kQ8_0, x.data(), n, reinterpret_cast<std::byte*>(a.q8_0.data()));
    for (std::int64_t j = 0; j < n; ++j) {
      a.code[j] = a.q8_0[j / 32].qs[j % 32];
      a.scale[j] = h(a.q8_0[j / 32].d);
    }
  }
  return a;
}

// One overload per family (the function types differ in their weight block).
void run_variant(const Matrix& m, const Activations& a, float* y, kernels::GemvQ8_0Fn fn) {
  fn(reinterpret_cast<const BlockQ8_0*>(m.bytes.data()), m.rows, m.cols, a.q8_0.data(), y);
}
void run_variant(const Matrix& m, const Activations& a, float* y, kernels::GemvQ4_0Fn fn) {
  fn(reinterpret_cast<const BlockQ4_0*>(m.bytes.data()), m.rows, m.cols, a.q8_0.data(), y);
}
void run_variant(const Matrix& m, const Activations& a, float* y, kernels::GemvQ4_KFn fn) {
  fn(reinterpret_cast<const BlockQ4_K*>(m.bytes.data()), m.rows, m.cols, a.q8_k.data(), y);
}

// Checks y (rows values) against (a) and (b); `what` names the case.
void check_gemv(const Matrix& m, const std::vector<float>& x, const Activations& a,
                const std::vector<float>& y, const std::string& what) {
  const std::int64_t block = ggml::traits(m.type).block_weights, blocks = m.cols / block;
  std::vector<float> w(static_cast<std::size_t>(m.cols));
  for (std::int64_t r = 0; r < m.rows; ++r) {
    const std::vector<Weight> wq = unpack_row(m, r);
    ggml::dequantize_row(m.type, m.bytes.data() + r * ggml::row_bytes(m.type, m.cols), m.cols, w.data());
    // (a) sum over blocks (and Q4_K sub-blocks) of scales times exact integer sums; magnitude for rounding.
    double plain = 0, magnitude = 0;
    for (std::int64_t b = 0; b < blocks; ++b) {
      for (std::int64_t s = b * block; s < (b + 1) * block; s += 32) {
        long long dot = 0, xsum = 0, dot_abs = 0, xsum_abs = 0;
        for (std::int64_t j = s; j < s + 32; ++j) {
          dot += static_cast<long long>(wq[j].code) * a.code[j];
          dot_abs += std::llabs(static_cast<long long>(wq[j].code) * a.code[j]);
          xsum += a.code[j];
          xsum_abs += std::abs(a.code[j]);
        }
        plain += wq[s].scale * a.scale[s] * static_cast<double>(dot) - wq[s].offset * a.scale[s] * xsum;
        magnitude += std::fabs(wq[s].scale * a.scale[s]) * static_cast<double>(dot_abs) +
                     std::fabs(wq[s].offset * a.scale[s]) * static_cast<double>(xsum_abs);
      }
    }
    const double tol_a = static_cast<double>(blocks + 10) * kU * magnitude + 1e-37;
    ASSERT_LE(std::fabs(y[r] - plain), tol_a)
        << what << " row " << r << " (a): y " << y[r] << " plain " << plain;
    // (b) against dequantize_row(W) . x: the activation error weighted by |w| plus float rounding.
    double ref = 0, act = 0, round = 0;
    for (std::int64_t j = 0; j < m.cols; ++j) {
      const double x8 = a.scale[j] * a.code[j];
      // The layout read here gives ggml's dequantized weight, up to its one rounding for Q4_K.
      const double exact = wq[j].scale * wq[j].code - wq[j].offset;
      const double a_j = m.type == Type::kQ4_K ? std::fabs(wq[j].scale * wq[j].code) + std::fabs(wq[j].offset)
                                               : std::fabs(w[j]);
      ASSERT_LE(std::fabs(w[j] - exact), kU * a_j) << what << " weight " << j;
      ref += static_cast<double>(w[j]) * x[j];
      act += std::fabs(w[j]) * std::fabs(x[j] - x8);
      round += a_j * (std::fabs(x[j]) + std::fabs(x8));
    }
    const double bound = act + static_cast<double>(blocks + 10) * kU * round + 1e-37;
    ASSERT_LE(std::fabs(y[r] - ref), bound) << what << " row " << r << " (b): y " << y[r] << " ref " << ref;
  }
}

// The per-value activation error bound of the header: Q8_0 d/2 + 127 |d - fp16(d)|, Q8_K |d|/2.
void check_activation_error(Type type, const std::vector<float>& x, const Activations& a) {
  const std::int64_t block = type == Type::kQ4_K ? 256 : 32;
  for (std::size_t b = 0; b < x.size() / block; ++b) {
    float amax = 0;
    for (std::int64_t j = 0; j < block; ++j) amax = std::max(amax, std::fabs(x[b * block + j]));
    const double d = amax / 127.0f;
    const double bound = type == Type::kQ4_K
                             ? d / 2 * (1 + 1e-5) + 1e-6 * amax
                             : d / 2 * (1 + 1e-5) + 127 * std::fabs(d - a.scale[b * block]) + 1e-6 * amax;
    for (std::int64_t j = 0; j < block; ++j) {
      const std::size_t i = b * block + j;
      // A Q8_K block below 127 / FLT_MAX quantizes to zero: its error is its (tiny) value.
      const double allowed = type == Type::kQ4_K && amax < 4e-37f ? amax : bound;
      ASSERT_LE(std::fabs(x[i] - a.scale[i] * a.code[i]), allowed) << "value " << i << " of block " << b;
    }
  }
}

// Rows: one, and counts that are multiples of nothing; columns: one block and several (an odd count of
// pairs of blocks and an odd last block among them: 7).
constexpr std::int64_t kRows[] = {1, 3, 7, 13};

template <class Fn>
void exercise(Type type, const kernels::KernelVariant<Fn>& v) {
  std::mt19937 gen(kernels::test::random_seed());
  const std::int64_t block = ggml::traits(type).block_weights;
  for (const std::int64_t rows : kRows)
    for (const std::int64_t blocks : {1, 2, 5, 7})
      for (const bool edge_w : {false, true})
        for (const bool edge_x : {false, true}) {
          const std::int64_t cols = blocks * block;
          const Matrix m = make_matrix(type, rows, cols, edge_w, gen);
          const std::vector<float> x = make_x(cols, edge_x, gen);
          const Activations a = quantize_x(type, x);
          check_activation_error(type, x, a);
          if (::testing::Test::HasFatalFailure()) return;
          std::vector<float> y(static_cast<std::size_t>(rows), -1.0f);
          run_variant(m, a, y.data(), v.fn);
          check_gemv(m, x, a, y,
                     std::string(v.name) + " " + std::string(ggml::traits(type).name) + " " +
                         std::to_string(rows) + "x" + std::to_string(cols) + (edge_w ? " edge-w" : "") +
                         (edge_x ? " edge-x" : ""));
          if (::testing::Test::HasFatalFailure()) return;
          // The dispatched entry quantizes x the same way and agrees within the same rounding.
          std::vector<float> yd(static_cast<std::size_t>(rows));
          kernels::gemv_ggml(type, m.bytes, rows, cols, x, yd);
          check_gemv(m, x, a, yd, "dispatched " + std::string(ggml::traits(type).name));
          if (::testing::Test::HasFatalFailure()) return;
        }
}

class GemvQ8_0 : public VariantTest<kernels::GemvQ8_0Fn> {};
TEST_P(GemvQ8_0, PlainIntegerSumAndFp32WithinTheActivationBound) { exercise(Type::kQ8_0, variant()); }
INSTANTIATE_TEST_SUITE_P(GgmlGemv, GemvQ8_0, ::testing::ValuesIn(kernels::gemv_q8_0_variants()),
                         VariantName());

class GemvQ4_0 : public VariantTest<kernels::GemvQ4_0Fn> {};
TEST_P(GemvQ4_0, PlainIntegerSumAndFp32WithinTheActivationBound) { exercise(Type::kQ4_0, variant()); }
INSTANTIATE_TEST_SUITE_P(GgmlGemv, GemvQ4_0, ::testing::ValuesIn(kernels::gemv_q4_0_variants()),
                         VariantName());

class GemvQ4_K : public VariantTest<kernels::GemvQ4_KFn> {};
TEST_P(GemvQ4_K, PlainIntegerSumAndFp32WithinTheActivationBound) { exercise(Type::kQ4_K, variant()); }
INSTANTIATE_TEST_SUITE_P(GgmlGemv, GemvQ4_K, ::testing::ValuesIn(kernels::gemv_q4_k_variants()),
                         VariantName());

// quantize_row_q8_K_ref by hand: max is the first value of largest magnitude (-2 before 2), iscale =
// -127 / max = 63.5, codes round half to even (63.5 -> 64, -63.5 -> -64), d = 1 / iscale.
TEST(GgmlGemv, Q8KQuantizerMatchesGgmlsDefinitionByHand) {
  std::vector<float> x(4 * 256, 0.0f);
  x[0] = 1.0f, x[1] = -2.0f, x[2] = 0.5f, x[3] = 2.0f, x[4] = -1.0f, x[20] = 0.25f;
  // Block 1 all zero; block 2: below 127 / FLT_MAX, all zero here (ggml: undefined); block 3: a positive
  // max first (0.5), so iscale = -254, d = -1/254 and the codes change sign.
  x[512 + 7] = 1e-38f;
  x[768 + 0] = 0.5f, x[768 + 17] = -0.5f, x[768 + 255] = 0.25f;
  std::vector<BlockQ8K> q(4);
  kernels::quantize_row_q8_k(x.data(), 1024, q.data());
  EXPECT_EQ(q[0].d, 1.0f / 63.5f);
  const int expect0[] = {64, -127, 32, 127, -64};
  for (int j = 0; j < 5; ++j) EXPECT_EQ(q[0].qs[j], expect0[j]) << j;
  EXPECT_EQ(q[0].qs[20], 16);  // 15.875
  EXPECT_EQ(q[0].bsums[0], 64 - 127 + 32 + 127 - 64);
  EXPECT_EQ(q[0].bsums[1], 16);
  for (int j = 21; j < 256; ++j) ASSERT_EQ(q[0].qs[j], 0);
  for (int b : {1, 2}) {
    EXPECT_EQ(q[b].d, 0.0f);
    for (int j = 0; j < 256; ++j) ASSERT_EQ(q[b].qs[j], 0);
    for (int g = 0; g < 16; ++g) ASSERT_EQ(q[b].bsums[g], 0);
  }
  EXPECT_EQ(q[3].d, 1.0f / -254.0f);
  EXPECT_EQ(q[3].qs[0], -127);
  EXPECT_EQ(q[3].qs[17], 127);
  EXPECT_EQ(q[3].qs[255], -64);  // -63.5 to even
  EXPECT_EQ(q[3].bsums[0], -127);
  EXPECT_EQ(q[3].bsums[1], 127);
  EXPECT_EQ(q[3].bsums[15], -64);
  EXPECT_THROW(kernels::quantize_row_q8_k(x.data(), 100, q.data()), Error);
  x[9] = NAN;
  EXPECT_THROW(kernels::quantize_row_q8_k(x.data(), 256, q.data()), Error);
}

TEST(GgmlGemv, DispatchRefusesWhatDoesNotFit) {
  std::vector<float> x(64, 1.0f), y(2);
  std::vector<std::byte> w(static_cast<std::size_t>(2 * ggml::row_bytes(Type::kQ8_0, 64)));
  EXPECT_TRUE(kernels::has_ggml_gemv(Type::kQ4_K));
  EXPECT_FALSE(kernels::has_ggml_gemv(Type::kQ5_0));
  EXPECT_NO_THROW(kernels::gemv_ggml(Type::kQ8_0, w, 2, 64, x, y));
  EXPECT_EQ(y, std::vector<float>(2, 0.0f));  // zero weights
  EXPECT_THROW(kernels::gemv_ggml(Type::kQ5_0, w, 2, 64, x, y), Error);
  EXPECT_THROW(kernels::gemv_ggml(Type::kQ8_0, w, 3, 64, x, y), Error);  // bytes
  EXPECT_THROW(kernels::gemv_ggml(Type::kQ8_0, w, 2, 48, x, y), Error);  // not blocks
  EXPECT_THROW(kernels::gemv_ggml(Type::kQ8_0, w, 2, 64, std::span(x).first(32), y), Error);
  EXPECT_THROW(kernels::gemv_ggml(Type::kQ8_0, w, 2, 64, x, std::span(y).first(1)), Error);
  x[3] = 1e7f;  // 1e7 / 127 overflows the float16 scale of the activation block
  EXPECT_THROW(kernels::gemv_ggml(Type::kQ8_0, w, 2, 64, x, y), Error);
  x[3] = INFINITY;
  EXPECT_THROW(kernels::gemv_ggml(Type::kQ8_0, w, 2, 64, x, y), Error);
  std::vector<float> xk(256, 1e7f), yk(1);  // Q8_K keeps a float32 scale: no such limit
  std::vector<std::byte> wk(static_cast<std::size_t>(ggml::row_bytes(Type::kQ4_K, 256)));
  EXPECT_NO_THROW(kernels::gemv_ggml(Type::kQ4_K, wk, 1, 256, xk, yk));
}

}  // namespace
}  // namespace qk
