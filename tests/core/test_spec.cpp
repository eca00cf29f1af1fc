// QuantSpec ranges (rule 1), min/max -> scale/zero point corner cases (rule 2), layouts and their errors.
#include <gtest/gtest.h>

#include "quantkit/quantkit.hpp"

namespace qk {
namespace {

QuantSpec spec_of(int bits, bool is_signed, Scheme scheme = Scheme::kAffine, bool reduce = false) {
  QuantSpec s;
  s.bits = bits;
  s.is_signed = is_signed;
  s.scheme = scheme;
  s.reduce_range = reduce;
  return s;
}

TEST(Spec, DefaultRanges) {
  EXPECT_EQ(spec_of(8, false).range(), (QRange{0, 255}));
  EXPECT_EQ(spec_of(8, true).range(), (QRange{-128, 127}));
  EXPECT_EQ(spec_of(8, false, Scheme::kAffine, true).range(), (QRange{0, 127}));
  EXPECT_EQ(spec_of(8, true, Scheme::kAffine, true).range(), (QRange{-64, 63}));
  EXPECT_EQ(spec_of(4, true).range(), (QRange{-8, 7}));
  EXPECT_EQ(spec_of(2, false).range(), (QRange{0, 3}));
  EXPECT_EQ(spec_of(3, true).range(), (QRange{-4, 3}));
}

TEST(Spec, ExplicitRangeAndReduceRangeFloorHalves) {
  QuantSpec s = spec_of(8, true, Scheme::kAffine, true);
  s.quant_min = -8;
  s.quant_max = 7;
  EXPECT_EQ(s.range(), (QRange{-4, 3}));
  EXPECT_EQ(s.storage_bits(), 3);
}

TEST(Spec, RejectsBadSettings) {
  EXPECT_THROW(spec_of(1, true).validate(), Error);
  EXPECT_THROW(spec_of(9, true).validate(), Error);
  EXPECT_THROW(spec_of(8, false, Scheme::kSymmetric, true).validate(), Error);
  QuantSpec s;
  s.quant_min = 1;
  s.quant_max = 7;
  EXPECT_THROW(s.validate(), Error);  // range must include 0
  s.quant_min = 0;
  s.quant_max = 0;
  EXPECT_THROW(s.validate(), Error);  // and be non-empty
}

TEST(Spec, ChooseQparamsCornerCases) {
  // All-zero tensor: scale = eps; affine zero point = qmin, symmetric 0 or 128.
  QParams p = choose_qparams(0.0f, 0.0f, spec_of(8, false));
  EXPECT_EQ(p.scale, kScaleEps);
  EXPECT_EQ(p.zero_point, 0);
  p = choose_qparams(0.0f, 0.0f, spec_of(8, false, Scheme::kSymmetric));
  EXPECT_EQ(p.zero_point, 128);
  p = choose_qparams(0.0f, 0.0f, spec_of(8, true, Scheme::kSymmetric));
  EXPECT_EQ(p.zero_point, 0);
  // Symmetric int8 divides by exactly 127.5.
  p = choose_qparams(-1.0f, 2.55f, spec_of(8, true, Scheme::kSymmetric));
  EXPECT_EQ(p.scale, 2.55f / 127.5f);
  // Unsigned symmetric with an explicit range centres on floor((qmin + qmax) / 2).
  QuantSpec s = spec_of(8, false, Scheme::kSymmetric);
  s.quant_min = 0;
  s.quant_max = 15;
  EXPECT_EQ(choose_qparams(-1.0f, 1.0f, s).zero_point, 7);
  // Zero-point tie: min/scale = -2.5 rounds to even, giving qmin + 2.
  QuantSpec a = spec_of(8, false);
  const float scale = 1.0f;
  // range 255 * 1.0 with min -2.5: scale = 255/255 = 1, -2.5/1 = -2.5 -> rint = -2 -> zp = 2.
  p = choose_qparams(-2.5f, 252.5f, a);
  EXPECT_EQ(p.scale, scale);
  EXPECT_EQ(p.zero_point, 2);
  EXPECT_THROW(choose_qparams(NAN, 1.0f, a), Error);
  EXPECT_THROW(choose_qparams(-INFINITY, 1.0f, a), Error);
}

TEST(Spec, LayoutsAndTheirErrors) {
  QuantSpec s;
  s.granularity = Granularity::kPerChannel;
  s.axis = 1;
  ChannelLayout l = channel_layout({2, 3, 4}, s);
  EXPECT_EQ(l.slots, 3);
  EXPECT_EQ(l.inner, 4);
  EXPECT_EQ(l.slot_of(13), 0);  // element (1, 0, 1)
  s.axis = -1;
  l = channel_layout({2, 3, 4}, s);
  EXPECT_EQ(l.slots, 4);
  EXPECT_EQ(l.slot_of(5), 1);
  s.axis = 3;
  EXPECT_THROW(channel_layout({2, 3, 4}, s), Error);
  s.granularity = Granularity::kPerGroup;
  s.group_size = 4;
  l = channel_layout({2, 8}, s);
  EXPECT_EQ(l.slots, 4);
  EXPECT_EQ(l.slot_of(7), 1);
  s.group_size = 3;
  EXPECT_THROW(channel_layout({2, 8}, s), Error);
  EXPECT_THROW(shape_numel({INT64_MAX, 2}), Error);
}

TEST(Spec, DynamicQparamsFollowPyTorch) {
  // Zero range: scale falls back to 0.1 and then the small-scale cut-off does not apply.
  const DynamicQParams z = choose_qparams_dynamic(0.0f, 0.0f, false, false);
  EXPECT_EQ(z.scale_f64, 0.1);
  EXPECT_EQ(z.zero_point, 0);
  const DynamicQParams p = choose_qparams_dynamic(-1.0f, 3.0f, false, true);
  EXPECT_EQ(p.range, (QRange{0, 127}));
  EXPECT_DOUBLE_EQ(p.scale_f64, 4.0 / 127.0);
}

}  // namespace
}  // namespace qk
