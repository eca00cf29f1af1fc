// Version 3 of the quantized file: no zero_point member when every zero point is 0, float16 scales, the
// full range rule; version 1 and 2 files stay readable (io/qfile.hpp).
#include <gtest/gtest.h>

#include "io_test_util.hpp"
#include "quantkit/quantkit.hpp"

namespace qk::io {
namespace {

using test::ScratchDir;

FileQuantOptions int4_groups(ScaleDType dtype = ScaleDType::kFloat32, RangeRule rule = RangeRule::kPyTorch,
                             Scheme scheme = Scheme::kSymmetric) {
  FileQuantOptions o;
  o.spec.bits = 4;
  o.spec.scheme = scheme;
  o.spec.granularity = Granularity::kPerGroup;
  o.spec.group_size = 32;
  o.spec.scale_dtype = dtype;
  o.spec.range_rule = rule;
  return o;
}

class QFileV3 : public ::testing::Test {
 protected:
  void SetUp() override {
    x_ = test::normal_values(64 * 128, 3, 0.0f, 1.0f);
    write_npy<float>(dir_.file("x.npy"), TensorView<const float>(x_.data(), Shape{64, 128}));
  }
  // The file's codes and parameters against the in-memory quantizer with the same spec.
  void expect_matches_memory(const QuantizedFile& f, const QuantSpec& spec) {
    const TensorView<const float> view(x_.data(), Shape{64, 128});
    const QuantParams want = choose_qparams<float>(view, spec);
    std::vector<std::int32_t> codes(x_.size());
    quantize<float, std::int32_t>(view, want, codes);
    EXPECT_EQ(f.params.scale, want.scale);
    EXPECT_EQ(f.params.zero_point, want.zero_point);
    EXPECT_EQ(unpack_codes(f), codes);
  }
  ScratchDir dir_;
  std::vector<float> x_;
};

TEST_F(QFileV3, SymmetricFilesStoreNoZeroPoint) {
  const FileQuantReport r = quantize_file(dir_.file("x.npy"), dir_.file("q.npz"), int4_groups());
  EXPECT_DOUBLE_EQ(r.bits_per_weight, 5.0);  // 4 + 32 / 32
  const auto names = npz_names(dir_.file("q.npz"));
  EXPECT_EQ(std::count(names.begin(), names.end(), "zero_point"), 0);
  const QuantizedFile f = read_quantized(dir_.file("q.npz"));
  EXPECT_FALSE(f.meta.zero_point_member);
  EXPECT_EQ(read_npz_member(dir_.file("q.npz"), "meta").as_string().find(kQuantizedFormatV3) != std::string::npos,
            true);
  expect_matches_memory(f, int4_groups().spec);
}

TEST_F(QFileV3, Float16ScalesCostHalfAndMatchTheRoundedQuantizer) {
  for (const RangeRule rule : {RangeRule::kPyTorch, RangeRule::kFull}) {
    const FileQuantOptions o = int4_groups(ScaleDType::kFloat16, rule);
    const FileQuantReport r = quantize_file(dir_.file("x.npy"), dir_.file("h.npz"), o);
    EXPECT_DOUBLE_EQ(r.bits_per_weight, 4.5);  // ggml's Q4_0
    EXPECT_EQ(read_npz_member(dir_.file("h.npz"), "scale").dtype(), DType::kFloat16);
    const QuantizedFile f = read_quantized(dir_.file("h.npz"));
    EXPECT_EQ(f.meta.spec.scale_dtype, ScaleDType::kFloat16);
    EXPECT_EQ(f.meta.spec.range_rule, rule);
    expect_matches_memory(f, o.spec);
  }
}

TEST_F(QFileV3, FullRangeFilesHaveNegativeScalesAndDequantizeToTheRule) {
  const FileQuantOptions o = int4_groups(ScaleDType::kFloat32, RangeRule::kFull);
  quantize_file(dir_.file("x.npy"), dir_.file("f.npz"), o);
  const QuantizedFile f = read_quantized(dir_.file("f.npz"));
  EXPECT_TRUE(std::any_of(f.params.scale.begin(), f.params.scale.end(), [](float s) { return s < 0; }));
  expect_matches_memory(f, o.spec);
  // Each group's value of largest magnitude comes back exactly.
  const std::vector<float> back = dequantize_to_float(f);
  for (std::size_t g = 0; g < x_.size() / 32; ++g) {
    std::size_t at = g * 32;
    for (std::size_t i = g * 32; i < g * 32 + 32; ++i)
      if (std::fabs(x_[i]) > std::fabs(x_[at])) at = i;
    EXPECT_EQ(back[at], x_[at]) << "group " << g;
  }
}

TEST_F(QFileV3, AffineFilesKeepTheirZeroPointAndVersion1) {
  const FileQuantReport r = quantize_file(dir_.file("x.npy"), dir_.file("a.npz"),
                                          int4_groups(ScaleDType::kFloat32, RangeRule::kPyTorch, Scheme::kAffine));
  EXPECT_DOUBLE_EQ(r.bits_per_weight, 6.0);
  const QuantizedFile f = read_quantized(dir_.file("a.npz"));
  EXPECT_TRUE(f.meta.zero_point_member);
  EXPECT_NE(read_npz_member(dir_.file("a.npz"), "meta").as_string().find(kQuantizedFormat), std::string::npos);
}

TEST_F(QFileV3, InconsistentFilesAreRefused) {
  quantize_file(dir_.file("x.npy"), dir_.file("q.npz"), int4_groups(ScaleDType::kFloat16));
  const QuantizedFile good = read_quantized(dir_.file("q.npz"));
  auto rewrite = [&](const std::string& name, bool with_zp, bool f32_scale) {
    NpzWriter w;
    w.add_encoded("q", encode_npy(good.q.dtype(), good.q.shape(), good.q.raw()));
    const Shape ps = param_shape(good.meta.shape, good.meta.spec);
    if (f32_scale) {
      w.add<float>("scale", ps, std::span<const float>(good.params.scale));
    } else {
      std::vector<half> h(good.params.scale.begin(), good.params.scale.end());
      w.add<half>("scale", ps, std::span<const half>(h));
    }
    if (with_zp) w.add<std::int32_t>("zero_point", ps, std::span<const std::int32_t>(good.params.zero_point));
    w.add_encoded("meta", encode_npy_string(encode_meta(good.meta)));
    w.write(dir_.file(name));
    return dir_.file(name);
  };
  EXPECT_NO_THROW(read_quantized(rewrite("same.npz", false, false)));
  // The meta says no zero_point member, yet one is there; float32 scales where the meta says float16.
  EXPECT_THROW(read_quantized(rewrite("zp.npz", true, false)), Error);
  try {
    (void)read_quantized(rewrite("f32.npz", false, true));
    ADD_FAILURE() << "float32 scales accepted for a float16 meta";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f32.npz: scale must be float16"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qk::io
