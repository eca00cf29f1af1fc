// quantkit's default specs (ptq/defaults.hpp): what a request that names no spec gets.
#include <gtest/gtest.h>

#include "quantkit/core/element_format.hpp"
#include "quantkit/ptq/defaults.hpp"

namespace qk {
namespace {

TEST(DefaultWeightSpec, Int8SymmetricPerChannelOnAxis0FromRank2) {
  for (const int rank : {2, 3, 4}) {
    const QuantSpec s = default_weight_spec(rank);
    EXPECT_EQ(s.bits, 8);
    EXPECT_TRUE(s.is_signed);
    EXPECT_EQ(s.scheme, Scheme::kSymmetric);
    EXPECT_EQ(s.granularity, Granularity::kPerChannel) << "rank " << rank;
    EXPECT_EQ(s.axis, 0);
  }
  for (const int rank : {0, 1}) EXPECT_EQ(default_weight_spec(rank).granularity, Granularity::kPerTensor);
}

TEST(DefaultActivationSpec, Int8SymmetricPerTensor) {
  const QuantSpec s = default_activation_spec();
  EXPECT_EQ(s.bits, 8);
  EXPECT_TRUE(s.is_signed);
  EXPECT_EQ(s.scheme, Scheme::kSymmetric);
  EXPECT_FALSE(s.reduce_range);
  EXPECT_FALSE(s.has_explicit_range());
  EXPECT_EQ(s.granularity, Granularity::kPerTensor);
  EXPECT_EQ(s.range().min, -128);
  EXPECT_EQ(s.range().max, 127);
}

TEST(DefaultCodebookSpec, Nf4TakesGroupsOf64AtEveryRank) {
  EXPECT_EQ(kNf4DefaultGroupSize, 64);  // QLoRA's block size
  for (const int rank : {1, 2, 3}) {
    const QuantSpec s = default_codebook_spec(ElementFormat::kNf4, rank);
    EXPECT_EQ(s.granularity, Granularity::kPerGroup) << "rank " << rank;
    EXPECT_EQ(s.group_size, 64);
  }
}

TEST(DefaultCodebookSpec, Fp8AndIntegerCodesKeepTheWeightDefault) {
  for (const ElementFormat f : {ElementFormat::kInt, ElementFormat::kFp8E4M3, ElementFormat::kFp8E5M2}) {
    for (const int rank : {0, 1, 2, 3}) {
      const QuantSpec s = default_codebook_spec(f, rank);
      const QuantSpec w = default_weight_spec(rank);
      EXPECT_EQ(s.granularity, w.granularity) << to_string(f) << " rank " << rank;
      EXPECT_EQ(s.axis, w.axis);
      EXPECT_EQ(s.group_size, w.group_size);
    }
  }
}

}  // namespace
}  // namespace qk
