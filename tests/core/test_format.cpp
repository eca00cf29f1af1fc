// The format table: one row per enum value in order, names that parse back, sizes that agree with the
// block structs and the quantization spec, and reference conversions that agree with the functions the
// rest of the library uses.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "quantkit/core/block_formats.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/format.hpp"
#include "quantkit/core/half.hpp"
#include "quantkit/core/spec.hpp"

namespace qk {
namespace {

TEST(FormatTable, OneRowPerFormatWithUniqueNamesThatParseBack) {
  std::set<std::string> names;
  std::size_t i = 0;
  for (const FormatTraits& t : all_formats()) {
    EXPECT_EQ(static_cast<std::size_t>(t.format), i++);
    EXPECT_TRUE(names.insert(t.name).second) << t.name;
    EXPECT_EQ(parse_format(t.name), t.format);
    EXPECT_STREQ(to_string(t.format), t.name);
    const bool self_contained = t.kind == FormatKind::kFloat || t.kind == FormatKind::kBlock;
    EXPECT_EQ(t.to_float != nullptr, self_contained) << t.name;
    EXPECT_EQ(t.from_float != nullptr, self_contained) << t.name;
    EXPECT_EQ(t.block_size > 0, t.kind == FormatKind::kBlock) << t.name;
  }
  EXPECT_EQ(names.size(), 21u);  // fp32/fp16/bf16, int2..8, uint2..8, fp8 x2, nf4, q4dq
  EXPECT_THROW(parse_format("int9"), Error);
  try {
    parse_format("q4_k");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q4dq"), std::string::npos) << "the message lists the names";
  }
}

TEST(FormatTable, IntegerFormatsMatchTheSpecRange) {
  for (int bits = 2; bits <= 8; ++bits) {
    for (const bool is_signed : {true, false}) {
      const FormatTraits& t = format_traits(integer_format(bits, is_signed));
      EXPECT_EQ(t.kind, FormatKind::kInteger);
      EXPECT_EQ(t.code_bits, bits);
      EXPECT_EQ(t.is_signed, is_signed);
      EXPECT_EQ(t.name, std::string(is_signed ? "int" : "uint") + std::to_string(bits));
      QuantSpec spec;
      spec.bits = bits;
      spec.is_signed = is_signed;
      const QRange r = spec.range();
      EXPECT_EQ(r.max - r.min + 1, std::int64_t{1} << bits) << t.name;
    }
  }
  EXPECT_THROW(integer_format(1, true), Error);
  EXPECT_THROW(integer_format(16, false), Error);
}

TEST(FormatTable, BitsPerWeightIncludeScales) {
  EXPECT_EQ(bits_per_weight(Format::kFloat32, 1), 32.0);
  EXPECT_EQ(bits_per_weight(Format::kBFloat16, 7), 16.0);
  // The quantized file's int4 g32: 4 bits + (32-bit scale + 32-bit zero point) / 32 = 6 (README's demo).
  EXPECT_EQ(bits_per_weight(Format::kInt4, 32), 6.0);
  EXPECT_EQ(bits_per_weight(Format::kNf4, 64), 5.0);
  EXPECT_EQ(bits_per_weight_nf4(), 4.5);  // the NF4 GEMV's weights: codes and one float32 scale per 64
  EXPECT_EQ(bits_per_weight(Format::kBlockQ4DQ, 1), bits_per_weight_q4dq());  // 4.375
  EXPECT_THROW(bits_per_weight(Format::kInt8, 0), Error);
}

TEST(FormatTable, ReferenceConversionsAgreeWithTheLibrary) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(256);
  for (float& v : x) v = normal(rng);

  std::vector<std::uint16_t> words(x.size());
  std::vector<float> back(x.size());
  format_traits(Format::kFloat16).from_float(x.data(), 256, words.data());
  format_traits(Format::kFloat16).to_float(words.data(), 256, back.data());
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(words[i], half(x[i]).bits);
    EXPECT_EQ(back[i], static_cast<float>(half(x[i])));
  }
  format_traits(Format::kBFloat16).from_float(x.data(), 256, words.data());
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(words[i], bfloat16(x[i]).bits);

  std::vector<BlockQ4DQ> q4(1);
  format_traits(Format::kBlockQ4DQ).from_float(x.data(), 256, q4.data());
  const std::vector<BlockQ4DQ> q4_expected = quantize_q4dq(x);
  ASSERT_EQ(0, std::memcmp(q4.data(), q4_expected.data(), sizeof(BlockQ4DQ)));
  EXPECT_THROW(format_traits(Format::kBlockQ4DQ).to_float(q4.data(), 100, back.data()), Error);
}

}  // namespace
}  // namespace qk
