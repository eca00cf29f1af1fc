// ggml's importance-weighted (imatrix) quantizers (qk::ggml::quantize_row with an importance vector) against
// ggml itself: tests/data/ggml/<type>.imatrix*.bin were written by ggml's quantize_<type>(rows, out, nrow,
// n_per_row, imatrix), the path of llama.cpp's --imatrix (make_golden_imatrix.c there), and every byte must
// match. Also: a null importance is the reference, what ggml does with an all-ones importance, and that the
// weighting lowers the importance-weighted error on real weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/ggml_golden_files.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/ggml_blocks.hpp"

namespace {

using qk::ggml::Type;

constexpr std::int64_t kRow = 256;
constexpr std::int64_t kRows = 13;  // the rows of inputs.f32, named in rows.txt

// Q8_0 has no importance path in ggml (quantize_q8_0 ignores it); the golden files include it anyway.
constexpr Type kWeighted[] = {Type::kQ4_0, Type::kQ4_1, Type::kQ5_0, Type::kQ5_1, Type::kQ2_K,
                              Type::kQ3_K, Type::kQ4_K, Type::kQ5_K, Type::kQ6_K};
constexpr Type kAll[] = {Type::kQ4_0, Type::kQ4_1, Type::kQ5_0, Type::kQ5_1, Type::kQ8_0,
                         Type::kQ2_K, Type::kQ3_K, Type::kQ4_K, Type::kQ5_K, Type::kQ6_K};

std::vector<std::byte> read_file(const std::string& name) { return qk::ggml::test::read_golden(name); }
std::vector<float> read_floats(const std::string& name) { return qk::ggml::test::read_golden_floats(name); }

std::string name_of(Type type) { return std::string(qk::ggml::traits(type).name); }

std::vector<std::byte> quantize(Type type, const float* x, std::int64_t n, const float* importance) {
  std::vector<std::byte> out(static_cast<std::size_t>(qk::ggml::row_bytes(type, n)));
  qk::ggml::quantize_row(type, x, n, out.data(), importance);
  return out;
}

// Rows of n weights quantized one by one with the same importance must equal the golden file's rows.
void expect_golden(Type type, const std::vector<float>& inputs, std::int64_t n, std::int64_t rows,
                   const float* importance, const std::string& file) {
  const std::vector<std::byte> golden = read_file(file);
  const std::int64_t bytes = qk::ggml::row_bytes(type, n);
  ASSERT_EQ(static_cast<std::int64_t>(golden.size()), bytes * rows) << file;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::vector<std::byte> ours = quantize(type, inputs.data() + r * n, n, importance);
    for (std::int64_t i = 0; i < bytes; ++i) {
      if (ours[static_cast<std::size_t>(i)] != golden[static_cast<std::size_t>(r * bytes + i)]) {
        ADD_FAILURE() << file << " row " << r << ": first different byte " << i << " of " << bytes
                      << ", ggml " << int(golden[static_cast<std::size_t>(r * bytes + i)]) << ", ours "
                      << int(ours[static_cast<std::size_t>(i)]);
        break;
      }
    }
  }
}

// make_golden_imatrix.c's make_importance, rebuilt: (1 + u) * 2^e from a fixed-seed xorshift32, with exact
// zeros (every 23rd column and columns 96..127), tiny (1e-12) and large (1e4) weights.
std::vector<float> make_importance() {
  std::vector<float> imp(kRow);
  std::uint32_t s = 0x1234567u;
  for (int j = 0; j < kRow; ++j) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    const float u = static_cast<float>(s >> 8) * (1.0f / 16777216.0f);
    imp[j] = std::ldexp(1.0f + u, static_cast<int>(s % 24) - 14);
    if (j % 37 == 5) imp[j] = 1e-12f;
    if (j % 41 == 7) imp[j] = 1e4f;
    if (j % 23 == 0 || (j >= 96 && j < 128)) imp[j] = 0.0f;
  }
  return imp;
}

TEST(GgmlImatrix, ImportanceVectorIsTheDocumentedOne) {
  const std::vector<float> imp = read_floats("imatrix.f32");
  ASSERT_EQ(imp.size(), static_cast<std::size_t>(kRow));
  const std::vector<float> rebuilt = make_importance();
  for (std::int64_t j = 0; j < kRow; ++j) EXPECT_EQ(imp[j], rebuilt[j]) << "column " << j;
  int zeros = 0;
  for (float v : imp) zeros += v == 0.0f;
  EXPECT_EQ(zeros, 43);  // 11 of every-23rd outside 96..127, and the 32 of 96..127
}

TEST(GgmlImatrix, QuantizeMatchesGgml) {
  const std::vector<float> inputs = read_floats("inputs.f32");
  ASSERT_EQ(inputs.size(), static_cast<std::size_t>(kRows * kRow));
  const std::vector<float> imp = read_floats("imatrix.f32");
  for (Type type : kAll) expect_golden(type, inputs, kRow, kRows, imp.data(), name_of(type) + ".imatrix.bin");
}

// Rows of two super-blocks: the importance is per column of the whole row (imp512[j] = imatrix[j], then
// imatrix[511 - j]), and Q4_0..Q5_1's sigma2 is the mean square of the whole row, not of a block.
TEST(GgmlImatrix, RowsOf512MatchGgml) {
  const std::vector<float> inputs = read_floats("inputs.f32");
  const std::vector<float> imp = read_floats("imatrix.f32");
  std::vector<float> imp512(2 * kRow);
  for (std::int64_t j = 0; j < 2 * kRow; ++j) imp512[j] = j < kRow ? imp[j] : imp[2 * kRow - 1 - j];
  for (Type type : kAll) {
    expect_golden(type, inputs, 2 * kRow, (kRows - 1) / 2, imp512.data(), name_of(type) + ".imatrix512.bin");
  }
}

// What ggml does with an all-ones importance vector: it still takes the weighted path (any non-null
// imatrix does), so the result is NOT the reference. Q4_0/Q5_0 pick the best of 19 scales around
// max / -2^(bits-1) by least squares with weights sqrt(sigma2 + x^2) instead of taking that scale (and code
// an all-zero block 0, not the reference's middle code); Q4_1/Q5_1 fit scale and min by make_qkx3_quants
// instead of min/max; Q2_K..Q5_K fit their groups with weights sqrt(sigma2 + x^2) (the references: |x|,
// x^2 or rms + |x|, with other search grids) and quantize the scales with make_qp_quants / make_qx_quants
// weighted by the groups' sums instead of rounding against the largest; Q6_K's groups are fitted with
// weight 1 (plain least squares) instead of the reference's x^2. Here only Q8_0 (which ignores the
// importance) and rows that leave no choice give the reference's bytes: the zero row for Q4_1, Q5_1 and
// the K-quants, the constant row for Q2_K, Q4_K..Q6_K, and normal_a for Q4_K.
TEST(GgmlImatrix, AllOnesIsGgmlsWeightedPathNotTheReference) {
  const std::vector<float> inputs = read_floats("inputs.f32");
  const std::vector<float> ones(kRow, 1.0f);
  for (Type type : kAll) {
    expect_golden(type, inputs, kRow, kRows, ones.data(), name_of(type) + ".imatrix_ones.bin");
    const std::vector<std::byte> reference = read_file(name_of(type) + ".quant.bin");
    const std::int64_t bytes = qk::ggml::row_bytes(type, kRow);
    int differ = 0;
    for (std::int64_t r = 0; r < kRows; ++r) {
      const std::vector<std::byte> ours = quantize(type, inputs.data() + r * kRow, kRow, ones.data());
      differ += std::memcmp(ours.data(), reference.data() + r * bytes, static_cast<std::size_t>(bytes)) != 0;
    }
    if (type == Type::kQ8_0) {
      EXPECT_EQ(differ, 0);
    } else {
      EXPECT_GE(differ, 10) << name_of(type)
                            << ": rows (of 13) whose all-ones bytes differ from the reference";
    }
  }
}

TEST(GgmlImatrix, NullImportanceIsTheReference) {
  const std::vector<float> inputs = read_floats("inputs.f32");
  for (Type type : kAll) {
    expect_golden(type, inputs, kRow, kRows, nullptr, name_of(type) + ".quant.bin");
    std::vector<std::byte> four(static_cast<std::size_t>(qk::ggml::row_bytes(type, kRow)));
    qk::ggml::quantize_row(type, inputs.data() + 7 * kRow, kRow, four.data());
    EXPECT_EQ(four, quantize(type, inputs.data() + 7 * kRow, kRow, nullptr)) << name_of(type);
  }
}

TEST(GgmlImatrix, FloatTypesAndQ8_0IgnoreImportance) {
  const std::vector<float> inputs = read_floats("inputs.f32");
  const std::vector<float> imp = read_floats("imatrix.f32");
  for (Type type : {Type::kF32, Type::kF16, Type::kBF16, Type::kQ8_0}) {
    for (std::int64_t r = 0; r < kRows; ++r) {
      EXPECT_EQ(quantize(type, inputs.data() + r * kRow, kRow, imp.data()),
                quantize(type, inputs.data() + r * kRow, kRow, nullptr))
          << name_of(type) << " row " << r;
    }
  }
}

TEST(GgmlImatrix, Errors) {
  const std::vector<float> inputs = read_floats("inputs.f32");
  std::vector<float> imp = read_floats("imatrix.f32");
  std::vector<std::byte> out(1024);
  imp[200] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(qk::ggml::quantize_row(Type::kQ4_K, inputs.data(), kRow, out.data(), imp.data()), qk::Error);
  imp[200] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(qk::ggml::quantize_row(Type::kQ4_0, inputs.data(), kRow, out.data(), imp.data()), qk::Error);
  imp[200] = 1.0f;
  EXPECT_THROW(qk::ggml::quantize_row(Type::kQ4_K, inputs.data(), 128, out.data(), imp.data()), qk::Error);
  std::vector<float> bad(inputs.begin(), inputs.begin() + kRow);
  bad[3] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(qk::ggml::quantize_row(Type::kQ2_K, bad.data(), kRow, out.data(), imp.data()), qk::Error);
  EXPECT_THROW(qk::ggml::quantize_row(Type::kQ8_1, inputs.data(), kRow, out.data(), imp.data()), qk::Error);
}

// sum_j imp[j] * (x[j] - deq[j])^2 of a row quantized with (or without) the importance.
double weighted_error(Type type, const float* x, const float* imp, bool weighted) {
  const std::vector<std::byte> q = quantize(type, x, kRow, weighted ? imp : nullptr);
  std::vector<float> deq(kRow);
  qk::ggml::dequantize_row(type, q.data(), kRow, deq.data());
  double sum = 0;
  for (std::int64_t j = 0; j < kRow; ++j) {
    const double d = static_cast<double>(x[j]) - static_cast<double>(deq[j]);
    sum += static_cast<double>(imp[j]) * d * d;
  }
  return sum;
}

// The point of the importance: on real weights (the three Silero rows, 10..12 of inputs.f32), the
// importance-weighted squared error of the weighted quantizer is at most the reference's for most rows
// (ggml's searches are heuristics, so not for every row and type). Printed for the record.
TEST(GgmlImatrix, WeightingLowersTheWeightedErrorOnSileroRows) {
  const std::vector<float> inputs = read_floats("inputs.f32");
  const std::vector<float> imp = read_floats("imatrix.f32");
  int better = 0;
  int total = 0;
  for (Type type : kWeighted) {
    std::string line = name_of(type) + ":";
    int type_better = 0;
    for (std::int64_t r = 10; r < 13; ++r) {
      const double with = weighted_error(type, inputs.data() + r * kRow, imp.data(), true);
      const double without = weighted_error(type, inputs.data() + r * kRow, imp.data(), false);
      char text[96];
      std::snprintf(text, sizeof text, "  row %lld weighted %.4g ref %.4g (%.2fx)", static_cast<long long>(r),
                    with, without, without / with);
      line += text;
      type_better += with <= without;
    }
    std::printf("%s\n", line.c_str());
    EXPECT_GE(type_better, 2) << name_of(type) << ": Silero rows (of 3) where the weighting does not lose";
    better += type_better;
    total += 3;
  }
  std::printf("weighted <= reference on %d of %d (type, row) pairs\n", better, total);
  EXPECT_GE(better, total * 8 / 10);
}

}  // namespace
