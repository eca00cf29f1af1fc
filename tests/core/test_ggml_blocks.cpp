// ggml's block formats (core/ggml_blocks.hpp) against ggml itself: the golden files of tests/data/ggml were
// written by ggml's quantize_row_*_ref and dequantize_row_* (make_golden.c there), and every byte and every
// float must match. Also hand-computed blocks, the round-trip error bounds, and the errors.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/ggml_golden_files.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/core/half.hpp"

namespace {

using qk::ggml::Type;

constexpr std::int64_t kRow = 256;  // every golden row is one super-block, eight blocks of 32

std::vector<std::byte> read_file(const std::string& name) { return qk::ggml::test::read_golden(name); }
std::vector<float> read_floats(const std::string& name) { return qk::ggml::test::read_golden_floats(name); }

std::vector<std::string> row_names() {
  std::ifstream in(std::string(QK_TEST_DATA_DIR) + "/ggml/rows.txt");
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) names.push_back(line);
  return names;
}

// Bit equality, so that -0 differs from 0 and a NaN must be ggml's NaN.
void expect_same_floats(const float* expected, const float* actual, std::int64_t n, const std::string& what) {
  int reported = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (std::bit_cast<std::uint32_t>(expected[i]) != std::bit_cast<std::uint32_t>(actual[i]) &&
        reported++ < 5) {
      ADD_FAILURE() << what << " element " << i << ": ggml " << expected[i] << ", ours " << actual[i];
    }
  }
}

constexpr Type kBlockTypes[] = {Type::kQ4_0, Type::kQ4_1, Type::kQ5_0, Type::kQ5_1, Type::kQ8_0};
constexpr Type kQuantizable[] = {Type::kQ4_0, Type::kQ4_1, Type::kQ5_0, Type::kQ5_1, Type::kQ8_0,
                                 Type::kQ2_K, Type::kQ3_K, Type::kQ4_K, Type::kQ5_K, Type::kQ6_K};
constexpr Type kDequantizable[] = {Type::kQ4_0, Type::kQ4_1, Type::kQ5_0, Type::kQ5_1, Type::kQ8_0,
                                   Type::kQ2_K, Type::kQ3_K, Type::kQ4_K, Type::kQ5_K, Type::kQ6_K};

std::string name_of(Type type) { return std::string(qk::ggml::traits(type).name); }

TEST(GgmlBlocks, TypeTable) {
  // ggml.h's ids, ggml_type_name's names, ggml_type_size's bytes (sizeof of the ggml-common.h structs).
  struct Row {
    Type type;
    std::uint32_t id;
    const char* name;
    std::int64_t weights, bytes;
  };
  const Row rows[] = {{Type::kF32, 0, "f32", 1, 4},        {Type::kF16, 1, "f16", 1, 2},
                      {Type::kQ4_0, 2, "q4_0", 32, 18},    {Type::kQ4_1, 3, "q4_1", 32, 20},
                      {Type::kQ5_0, 6, "q5_0", 32, 22},    {Type::kQ5_1, 7, "q5_1", 32, 24},
                      {Type::kQ8_0, 8, "q8_0", 32, 34},    {Type::kQ8_1, 9, "q8_1", 32, 36},
                      {Type::kQ2_K, 10, "q2_K", 256, 84},  {Type::kQ3_K, 11, "q3_K", 256, 110},
                      {Type::kQ4_K, 12, "q4_K", 256, 144}, {Type::kQ5_K, 13, "q5_K", 256, 176},
                      {Type::kQ6_K, 14, "q6_K", 256, 210}, {Type::kQ8_K, 15, "q8_K", 256, 292},
                      {Type::kBF16, 30, "bf16", 1, 2}};
  ASSERT_EQ(qk::ggml::types().size(), std::size(rows));
  for (const Row& r : rows) {
    const qk::ggml::TypeTraits& t = qk::ggml::traits(r.type);
    EXPECT_EQ(static_cast<std::uint32_t>(t.type), r.id) << r.name;
    EXPECT_EQ(t.name, r.name);
    EXPECT_EQ(t.block_weights, r.weights) << r.name;
    EXPECT_EQ(t.block_bytes, r.bytes) << r.name;
    EXPECT_EQ(qk::ggml::type_from_name(r.name), r.type) << r.name;
  }
  EXPECT_FALSE(qk::ggml::type_from_name("q4_2").has_value());
  EXPECT_EQ(qk::ggml::row_bytes(Type::kQ4_K, 4096), 16 * 144);
}

TEST(GgmlBlocks, QuantizeMatchesGgml) {
  const std::vector<float> inputs = read_floats("inputs.f32");
  const std::vector<std::string> names = row_names();
  ASSERT_EQ(inputs.size(), names.size() * kRow);
  for (Type type : kQuantizable) {
    const std::vector<std::byte> golden = read_file(name_of(type) + ".quant.bin");
    const std::int64_t bytes = qk::ggml::row_bytes(type, kRow);
    ASSERT_EQ(golden.size(), names.size() * static_cast<std::size_t>(bytes)) << name_of(type);
    for (std::size_t r = 0; r < names.size(); ++r) {
      std::vector<std::byte> ours(static_cast<std::size_t>(bytes));
      qk::ggml::quantize_row(type, inputs.data() + r * kRow, kRow, ours.data());
      for (std::int64_t i = 0; i < bytes; ++i) {
        if (ours[i] != golden[r * bytes + i]) {
          ADD_FAILURE() << name_of(type) << " row " << names[r] << " byte " << i << ": ggml "
                        << int(golden[r * bytes + i]) << ", ours " << int(ours[i]);
          break;
        }
      }
    }
  }
}

TEST(GgmlBlocks, DequantizeMatchesGgml) {
  const std::vector<std::string> names = row_names();
  for (Type type : kDequantizable) {
    const std::int64_t bytes = qk::ggml::row_bytes(type, kRow);
    // The blocks ggml's quantizer made of the input rows, and random blocks (all scale bit patterns).
    for (const std::string set : {"quant", "random"}) {
      const std::vector<std::byte> blocks = read_file(name_of(type) + "." + set + ".bin");
      const std::vector<float> golden =
          read_floats(name_of(type) + "." + (set == "quant" ? "dequant" : "random_dequant") + ".f32");
      const std::size_t rows = blocks.size() / static_cast<std::size_t>(bytes);
      ASSERT_EQ(golden.size(), rows * kRow) << name_of(type) << " " << set;
      ASSERT_GE(rows, 4u);
      std::vector<float> ours(kRow);
      for (std::size_t r = 0; r < rows; ++r) {
        qk::ggml::dequantize_row(type, blocks.data() + r * bytes, kRow, ours.data());
        const std::string what =
            name_of(type) + " " + set + " row " + (set == "quant" ? names[r] : std::to_string(r));
        expect_same_floats(golden.data() + r * kRow, ours.data(), kRow, what);
      }
    }
  }
}

// Hand-computed blocks. A float16 d is shown as its bits: 1.0 = 0x3c00, -0.5 = 0xb800, -0.0 = 0x8000.
template <class Block>
Block quantize_block(Type type, const std::vector<float>& x) {
  Block b;
  static_assert(std::is_trivially_copyable_v<Block>);
  qk::ggml::quantize_row(type, x.data(), static_cast<std::int64_t>(x.size()),
                         reinterpret_cast<std::byte*>(&b));
  return b;
}

TEST(GgmlBlocks, HandComputedQ8_0) {
  // absmax 127: d = 127 / 127 = 1.0 exactly, id = 1, and every integer input is its own code.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  x[0] = 127.0f;
  auto b = quantize_block<qk::ggml::BlockQ8_0>(Type::kQ8_0, x);
  EXPECT_EQ(b.d, 0x3c00);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], static_cast<int>(x[j])) << j;
  // Ties round away from zero (roundf): 2.5 -> 3, -2.5 -> -3, 0.5 -> 1, -0.5 -> -1.
  x[1] = 2.5f, x[2] = -2.5f, x[3] = 0.5f, x[4] = -0.5f;
  b = quantize_block<qk::ggml::BlockQ8_0>(Type::kQ8_0, x);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -3);
  EXPECT_EQ(b.qs[3], 1);
  EXPECT_EQ(b.qs[4], -1);
}

TEST(GgmlBlocks, HandComputedQ4_0) {
  // The first value of largest magnitude is -8 (the -8 at j = 16 does not replace it): d = -8 / -8 = 1,
  // code = (int8_t)(x + 8.5) = x + 8 for integers, weight j low nibble, weight j + 16 high nibble.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 16 - 8);
  auto b = quantize_block<qk::ggml::BlockQ4_0>(Type::kQ4_0, x);
  EXPECT_EQ(b.d, 0x3c00);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;

  // Sign rule: +4 comes first, so d = 4 / -8 = -0.5 and id = -2. 4 -> -8 + 8.5 -> code 0; -4 -> 8 + 8.5
  // = 16.5 -> 16, capped at 15 (dequantized (15 - 8) * -0.5 = -3.5: the cap costs half a step); 0 -> 8.
  std::fill(x.begin(), x.end(), 0.0f);
  x[0] = 4.0f, x[1] = -4.0f;
  b = quantize_block<qk::ggml::BlockQ4_0>(Type::kQ4_0, x);
  EXPECT_EQ(b.d, 0xb800);
  EXPECT_EQ(b.qs[0], 0x80);
  EXPECT_EQ(b.qs[1], 0x8f);
  for (int j = 2; j < 16; ++j) EXPECT_EQ(b.qs[j], 0x88) << j;
  float y[32];
  qk::ggml::dequantize_row(Type::kQ4_0, reinterpret_cast<const std::byte*>(&b), 32, y);
  EXPECT_EQ(y[0], 4.0f);
  EXPECT_EQ(y[1], -3.5f);

  // All zero: d = 0 / -8 = -0.0 (float16 0x8000), id = 0, every code 8; dequantized (8 - 8) * -0.0 = -0.0.
  std::fill(x.begin(), x.end(), 0.0f);
  b = quantize_block<qk::ggml::BlockQ4_0>(Type::kQ4_0, x);
  EXPECT_EQ(b.d, 0x8000);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], 0x88) << j;
  qk::ggml::dequantize_row(Type::kQ4_0, reinterpret_cast<const std::byte*>(&b), 32, y);
  for (float v : y) EXPECT_TRUE(v == 0.0f && std::signbit(v));
}

TEST(GgmlBlocks, HandComputedQ4_1Q5_0Q5_1) {
  // Q4_1, x[j] = j % 16: min 0, max 15, d = 15 / 15 = 1, m = 0, code = (int8_t)(x + 0.5) = x.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 16);
  const auto b41 = quantize_block<qk::ggml::BlockQ4_1>(Type::kQ4_1, x);
  EXPECT_EQ(b41.d, 0x3c00);
  EXPECT_EQ(b41.m, 0x0000);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b41.qs[j], j | (j << 4)) << j;

  // Q5_0, x[j] = j - 16: the first largest magnitude is x[0] = -16, d = -16 / -16 = 1, code = x + 16 = j.
  // Low nibbles j and j + 16 -> j | j << 4; bit 4 set exactly for codes 16..31: qh = 0xffff0000 (LE).
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  const auto b50 = quantize_block<qk::ggml::BlockQ5_0>(Type::kQ5_0, x);
  EXPECT_EQ(b50.d, 0x3c00);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b50.qs[j], j | (j << 4)) << j;
  EXPECT_EQ(b50.qh[0], 0x00);
  EXPECT_EQ(b50.qh[1], 0x00);
  EXPECT_EQ(b50.qh[2], 0xff);
  EXPECT_EQ(b50.qh[3], 0xff);

  // Q5_1, x[j] = j: min 0, max 31, d = 31 / 31 = 1, code = j, the same bytes as the Q5_0 block.
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j);
  const auto b51 = quantize_block<qk::ggml::BlockQ5_1>(Type::kQ5_1, x);
  EXPECT_EQ(b51.d, 0x3c00);
  EXPECT_EQ(b51.m, 0x0000);
  EXPECT_EQ(std::memcmp(b51.qs, b50.qs, 16), 0);
  EXPECT_EQ(std::memcmp(b51.qh, b50.qh, 4), 0);
}

TEST(GgmlBlocks, HandComputedQ4_K) {
  // get_scale_min_k4: sub-block 0 takes scale = scales[0] & 63, min = scales[4] & 63; sub-block 4 takes
  // scale = (scales[8] & 15) | (scales[0] >> 6) << 4, min = (scales[8] >> 4) | (scales[4] >> 6) << 4.
  qk::ggml::BlockQ4_K b{};
  b.d = qk::float_to_half_bits(0.5f);
  b.dmin = qk::float_to_half_bits(0.25f);
  b.scales[0] = 0xc3;                     // sub-block 0 scale 3; top bits 3 -> sub-block 4 scale + 48
  b.scales[4] = 0x45;                     // sub-block 0 min 5; top bits 1 -> sub-block 4 min + 16
  b.scales[8] = 0x72;                     // sub-block 4: scale 2 + 48 = 50, min 7 + 16 = 23
  for (std::uint8_t& q : b.qs) q = 0x9a;  // low nibble 10 (sub-blocks 0, 2, 4, 6), high 9 (1, 3, 5, 7)
  std::vector<float> y(256);
  qk::ggml::dequantize_row(Type::kQ4_K, reinterpret_cast<const std::byte*>(&b), 256, y.data());
  EXPECT_EQ(y[0], 0.5f * 3 * 10 - 0.25f * 5);      // 13.75
  EXPECT_EQ(y[128], 0.5f * 50 * 10 - 0.25f * 23);  // 244.25
  EXPECT_EQ(y[32], 0.0f);                          // sub-block 1: scale 0, min 0
}

// Per-element bound of |x - dequantized| for a block of 32: half a step d, plus what the float16 rounding
// of d costs the largest code, plus (for the _1 types) the rounding of m; the symmetric types can lose a
// whole step on the side their code range is short of (code 16 of Q4_0 is capped at 15). Float16 rounds a
// value v by at most max(|v| 2^-11, 2^-25): relative in the normal range, half the 2^-24 subnormal step
// below it.
double element_bound(Type type, const float* x) {
  float amax = 0, min = x[0], max = x[0];
  for (int j = 0; j < 32; ++j) {
    amax = std::max(amax, std::fabs(x[j]));
    min = std::min(min, x[j]);
    max = std::max(max, x[j]);
  }
  const auto rounding = [](double v) {
    return std::max(std::fabs(v) * std::ldexp(1.0, -11), std::ldexp(1.0, -25));
  };
  const double range = double(max) - min;
  switch (type) {
    case Type::kQ8_0:
      return amax / 127.0 * 0.5 + 127 * rounding(amax / 127.0);
    case Type::kQ4_0:
      return amax / 8.0 + 8 * rounding(amax / 8.0);
    case Type::kQ5_0:
      return amax / 16.0 + 16 * rounding(amax / 16.0);
    case Type::kQ4_1:
      return range / 15.0 * 0.5 + 15 * rounding(range / 15.0) + rounding(min);
    default:
      return range / 31.0 * 0.5 + 31 * rounding(range / 31.0) + rounding(min);
  }
}

TEST(GgmlBlocks, RoundTripErrorBounds) {
  const auto seed = static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::int64_t n = 32 * 64;
  std::vector<float> x(n), y(n);
  for (int trial = 0; trial < 8; ++trial) {
    // 2^-16 .. 2^12: d and m stay inside float16 range (2^16 overflows m to -inf, as in ggml).
    const float scale = std::ldexp(1.0f, 4 * trial - 16);
    for (float& v : x) v = scale * normal(rng);
    for (Type type : kBlockTypes) {
      std::vector<std::byte> q(static_cast<std::size_t>(qk::ggml::row_bytes(type, n)));
      qk::ggml::quantize_row(type, x.data(), n, q.data());
      qk::ggml::dequantize_row(type, q.data(), n, y.data());
      for (std::int64_t i = 0; i < n; ++i) {
        // 1e-6 relative: the float32 rounding of the code times d and of 1 / d.
        const double bound = element_bound(type, x.data() + i / 32 * 32) * (1 + 1e-6);
        ASSERT_LE(std::fabs(double(x[i]) - y[i]), bound) << name_of(type) << " element " << i;
      }
    }
  }
}

TEST(GgmlBlocks, GgmlTestQuantizeFnsBound) {
  // ggml's tests/test-quantize-fns.cpp: 0.1 + 2 cos(i) over 4096 weights, "rmse" sqrt(sum of squares) / n
  // below MAX_QUANTIZATION_TOTAL_ERROR = 0.002, _2BITS = 0.0075 for q2_K, _3BITS = 0.004 for q3_K.
  const std::int64_t n = 32 * 128;
  std::vector<float> x(n), y(n);
  for (std::int64_t i = 0; i < n; ++i) x[i] = 0.1f + 2 * std::cos(static_cast<float>(i));
  for (Type type : kQuantizable) {
    std::vector<std::byte> q(static_cast<std::size_t>(qk::ggml::row_bytes(type, n)));
    qk::ggml::quantize_row(type, x.data(), n, q.data());
    qk::ggml::dequantize_row(type, q.data(), n, y.data());
    double sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    const double bound = type == Type::kQ2_K ? 0.0075 : type == Type::kQ3_K ? 0.004 : 0.002;
    EXPECT_LT(std::sqrt(sum) / n, bound) << name_of(type);
  }
}

TEST(GgmlBlocks, KQuantRoundTripOnRandomData) {
  // Root-mean-square error relative to the data's own RMS on N(0, 1) weights. The limits are twice what
  // the reference quantizers give on 8192 such weights (measured, seeds 1 to 3: 0.30 q2_K, 0.15 q3_K,
  // 0.072 q4_K, 0.036 q5_K, 0.018 q6_K; for comparison q4_0 0.086, q8_0 0.0054).
  const auto seed = static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::int64_t n = kRow * 32;
  std::vector<float> x(n), y(n);
  for (float& v : x) v = normal(rng);
  const std::pair<Type, double> limits[] = {
      {Type::kQ2_K, 0.6}, {Type::kQ3_K, 0.3}, {Type::kQ4_K, 0.15}, {Type::kQ5_K, 0.08}, {Type::kQ6_K, 0.04}};
  for (const auto& [type, limit] : limits) {
    std::vector<std::byte> q(static_cast<std::size_t>(qk::ggml::row_bytes(type, n)));
    qk::ggml::quantize_row(type, x.data(), n, q.data());
    qk::ggml::dequantize_row(type, q.data(), n, y.data());
    double err = 0, sig = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      sig += double(x[i]) * x[i];
    }
    EXPECT_LT(std::sqrt(err / sig), limit) << name_of(type);
  }
}

TEST(GgmlBlocks, FloatTypesConvert) {
  const float x[3] = {1.0f, -65504.0f, 1.0f + std::ldexp(1.0f, -11)};  // the last a tie: rounds to even, 1
  std::uint16_t h[3];
  qk::ggml::quantize_row(Type::kF16, x, 3, reinterpret_cast<std::byte*>(h));
  EXPECT_EQ(h[0], 0x3c00);
  EXPECT_EQ(h[1], 0xfbff);
  EXPECT_EQ(h[2], 0x3c00);
  float y[3];
  qk::ggml::dequantize_row(Type::kBF16, reinterpret_cast<const std::byte*>(h), 2, y);
  EXPECT_EQ(y[0], std::bit_cast<float>(0x3c000000u));
}

TEST(GgmlBlocks, Errors) {
  std::vector<float> x(64, 1.0f);
  std::vector<std::byte> out(1024);
  auto message = [](auto f) {
    try {
      f();
    } catch (const qk::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string not_multiple =
      message([&] { qk::ggml::quantize_row(Type::kQ4_0, x.data(), 33, out.data()); });
  EXPECT_NE(not_multiple.find("q4_0"), std::string::npos) << not_multiple;
  EXPECT_NE(not_multiple.find("33"), std::string::npos) << not_multiple;
  const std::string k = message([&] { qk::ggml::dequantize_row(Type::kQ6_K, out.data(), 64, x.data()); });
  EXPECT_NE(k.find("q6_K"), std::string::npos) << k;
  const std::string unsupported =
      message([&] { qk::ggml::quantize_row(Type::kQ8_K, x.data(), 256, out.data()); });  // not read
  EXPECT_NE(unsupported.find("q8_K"), std::string::npos) << unsupported;
  x[5] = std::nanf("");
  const std::string nan = message([&] { qk::ggml::quantize_row(Type::kQ8_0, x.data(), 64, out.data()); });
  EXPECT_NE(nan.find("element 5"), std::string::npos) << nan;
  EXPECT_THROW(qk::ggml::row_bytes(Type::kQ4_0, -32), qk::Error);
  EXPECT_THROW(qk::ggml::traits(static_cast<Type>(4)), qk::Error);
}

}  // namespace
