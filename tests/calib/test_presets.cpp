// Target presets (calib/presets.hpp): the table, and the spec a request starts from with or without one.
#include <gtest/gtest.h>

#include <string>

#include "quantkit/calib/presets.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/ptq/defaults.hpp"

namespace qk {
namespace {

void expect_same_spec(const QuantSpec& a, const QuantSpec& b, const std::string& what) {
  EXPECT_EQ(a.bits, b.bits) << what;
  EXPECT_EQ(a.is_signed, b.is_signed) << what;
  EXPECT_EQ(a.scheme, b.scheme) << what;
  EXPECT_EQ(a.reduce_range, b.reduce_range) << what;
  EXPECT_EQ(a.granularity, b.granularity) << what;
  EXPECT_EQ(a.axis, b.axis) << what;
  EXPECT_EQ(a.group_size, b.group_size) << what;
}

TEST(Presets, NoPresetMeansQuantkitsDefaults) {
  for (const int rank : {0, 1, 2, 3})
    expect_same_spec(weight_spec_for_preset("", rank), default_weight_spec(rank), "weights");
  expect_same_spec(activation_spec_for_preset(""), default_activation_spec(), "activations");
}

TEST(Presets, EveryPresetGivesItsTableRow) {
  ASSERT_EQ(target_presets().size(), 5u);
  for (const TargetPreset& p : target_presets()) {
    const QuantSpec w = weight_spec_for_preset(p.name, 2);
    EXPECT_EQ(w.bits, 8) << p.name;
    EXPECT_EQ(w.is_signed, p.weight_signed) << p.name;
    EXPECT_EQ(w.scheme, p.weight_scheme) << p.name;
    EXPECT_EQ(w.granularity, Granularity::kPerChannel) << p.name;
    EXPECT_EQ(weight_spec_for_preset(p.name, 1).granularity, Granularity::kPerTensor) << p.name;
    const QuantSpec a = activation_spec_for_preset(p.name);
    EXPECT_EQ(a.is_signed, p.activation_signed) << p.name;
    EXPECT_EQ(a.scheme, p.activation_scheme) << p.name;
    EXPECT_EQ(a.reduce_range, p.activation_reduce_range) << p.name;
    EXPECT_EQ(a.granularity, Granularity::kPerTensor) << p.name;
  }
  // x86 (FBGEMM): dynamic uint8 activations with reduce_range, i.e. codes [0, 127].
  const QuantSpec x86 = activation_spec_for_preset("x86");
  EXPECT_EQ(x86.range().min, 0);
  EXPECT_EQ(x86.range().max, 127);
  EXPECT_TRUE(find_preset("x86").dynamic_activations);
}

TEST(Presets, UnknownNameListsTheKnownOnes) {
  try {
    weight_spec_for_preset("tpu9000", 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown preset 'tpu9000'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("generic, ane, hexagon, edgetpu, x86"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(activation_spec_for_preset("tpu9000"), Error);
}

TEST(Presets, NotesNameNoCommandLineOption) {
  for (const TargetPreset& p : target_presets())
    EXPECT_EQ(std::string(p.note).find("--"), std::string::npos) << p.name << ": " << p.note;
}

}  // namespace
}  // namespace qk
