// Summaries of tensor files (files/inspect.hpp): kinds, statistics, quantized-file figures, members,
// errors against a reference.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/files/inspect.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"
#include "quantkit/ptq/defaults.hpp"
#include "quantkit/files/quantize_file.hpp"

namespace qk {
namespace {

using io::test::ScratchDir;

std::vector<float> ramp(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 0.01f * static_cast<float>(i) - 1.0f;
  return v;
}

TEST(FilesInspect, KindsOfTensorFiles) {
  const ScratchDir dir;
  const std::vector<float> w = ramp(4 * 64);
  io::write_npy(dir.file("w.npy"), TensorView<const float>(w.data(), {4, 64}));
  quantize_file(dir.file("w.npy"), dir.file("q.npz"), FileQuantOptions{.spec = default_weight_spec(2)});
  io::NpzWriter plain;
  plain.add<float>("a", {2}, std::vector<float>{1.0f, 2.0f});
  plain.write(dir.file("plain.npz"));
  EXPECT_EQ(tensor_file_kind(dir.file("w.npy")), TensorFileKind::kNpy);
  EXPECT_EQ(tensor_file_kind(dir.file("q.npz")), TensorFileKind::kQuantized);
  EXPECT_EQ(tensor_file_kind(dir.file("plain.npz")), TensorFileKind::kNpz);
  const std::vector<NpzMember> members = npz_members(dir.file("plain.npz"));
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].name, "a");
  EXPECT_EQ(members[0].shape, (Shape{2}));
  EXPECT_EQ(members[0].dtype, io::DType::kFloat32);
}

TEST(FilesInspect, NpyStatisticsAndReference) {
  const ScratchDir dir;
  const std::vector<float> w = ramp(32);
  io::write_npy(dir.file("w.npy"), TensorView<const float>(w.data(), {4, 8}));
  const NpySummary s = summarize_npy(dir.file("w.npy"));
  EXPECT_EQ(s.shape, (Shape{4, 8}));
  EXPECT_EQ(s.dtype, io::DType::kFloat32);
  EXPECT_EQ(s.file_bytes, std::filesystem::file_size(dir.file("w.npy")));
  EXPECT_EQ(s.stats.count, 32);
  EXPECT_FLOAT_EQ(static_cast<float>(s.stats.min), -1.0f);
  EXPECT_FALSE(s.error);
  const NpySummary same = summarize_npy(dir.file("w.npy"), dir.file("w.npy"));
  ASSERT_TRUE(same.error);
  EXPECT_EQ(same.error->mse, 0.0);
  io::write_npy(dir.file("other.npy"), TensorView<const float>(w.data(), {8, 4}));
  try {
    summarize_npy(dir.file("w.npy"), dir.file("other.npy"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other.npy: reference shape (8, 4) differs from (4, 8)"),
              std::string::npos)
        << e.what();
  }
}

TEST(FilesInspect, QuantizedFileFigures) {
  const ScratchDir dir;
  const std::vector<float> w = ramp(4 * 64);
  io::write_npy(dir.file("w.npy"), TensorView<const float>(w.data(), {4, 64}));
  quantize_file(dir.file("w.npy"), dir.file("q.npz"), FileQuantOptions{.spec = default_weight_spec(2)});
  const QuantizedSummary s = summarize_quantized(dir.file("q.npz"), dir.file("w.npy"));
  EXPECT_EQ(s.scales, 4u);  // per channel
  EXPECT_GT(s.scale_min, 0.0);
  EXPECT_LE(s.scale_min, s.scale_max);
  EXPECT_EQ(s.zero_point_min, 0);  // symmetric
  EXPECT_EQ(s.zero_point_max, 0);
  EXPECT_EQ(s.original_bytes, 4u * 64 * 4);
  EXPECT_EQ(s.file_bytes, std::filesystem::file_size(dir.file("q.npz")));
  EXPECT_DOUBLE_EQ(s.compression_ratio,
                   static_cast<double>(s.original_bytes) / static_cast<double>(s.file_bytes));
  EXPECT_FALSE(s.has_input_scale);
  ASSERT_TRUE(s.error);
  // 8 bits on a smooth ramp: the step is 1/127.5 of each row's range, far above 35 dB.
  EXPECT_GT(s.error->sqnr_db, 35.0);
  EXPECT_EQ(format_label(s.meta), "int8 per-channel");
}

TEST(FilesInspect, FormatLabels) {
  const ScratchDir dir;
  const std::vector<float> w = ramp(4 * 64);
  io::write_npy(dir.file("w.npy"), TensorView<const float>(w.data(), {4, 64}));
  FileQuantOptions nf4{.spec = default_codebook_spec(ElementFormat::kNf4, 2), .element = ElementFormat::kNf4};
  quantize_file(dir.file("w.npy"), dir.file("nf4.npz"), nf4);
  EXPECT_EQ(format_label(summarize_quantized(dir.file("nf4.npz")).meta), "nf4 g64");
  QuantSpec u4 = default_weight_spec(2);
  u4.bits = 4;
  u4.is_signed = false;
  u4.scheme = Scheme::kAffine;
  u4.granularity = Granularity::kPerTensor;
  quantize_file(dir.file("w.npy"), dir.file("u4.npz"), FileQuantOptions{.spec = u4});
  EXPECT_EQ(format_label(summarize_quantized(dir.file("u4.npz")).meta), "int4u per-tensor");
}

}  // namespace
}  // namespace qk
