// Quantized files straight into the GEMV's packed weights (files/packed_weight_file.hpp): the loaded
// weights equal packing the floats directly (same codes, same scales, same GEMV output), and files the
// kernels cannot take are refused with a message naming the file.
#include <gtest/gtest.h>

#include <random>

#include "quantkit/quantkit.hpp"
#include "io/io_test_util.hpp"

namespace qk {
namespace {

using io::test::ScratchDir;

struct Layer {
  std::int64_t rows, cols;
  std::vector<float> w, x;
};

Layer make_layer(std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  Layer l{rows, cols, io::test::normal_values(static_cast<std::size_t>(rows * cols), seed, 0.0f, 0.5f),
          io::test::normal_values(static_cast<std::size_t>(cols), seed + 1, 0.0f, 1.0f)};
  return l;
}

FileQuantOptions int_options(int bits, std::int64_t group) {
  FileQuantOptions o;
  o.spec.bits = bits;
  o.spec.is_signed = true;
  o.spec.scheme = Scheme::kSymmetric;
  if (group > 0) {
    o.spec.granularity = Granularity::kPerGroup;
    o.spec.group_size = group;
  } else {
    o.spec.granularity = Granularity::kPerChannel;
    o.spec.axis = 0;
  }
  return o;
}

std::vector<float> gemv_of(const auto& weights, const std::vector<float>& x, std::int64_t rows) {
  std::vector<float> y(static_cast<std::size_t>(rows));
  kernels::gemv(x, weights, y);
  return y;
}

// y = dequantize(file) x in double: what any GEMV on the file must approximate.
std::vector<double> reference_gemv(const io::QuantizedFile& f, const std::vector<float>& x, std::int64_t rows) {
  const std::vector<float> w = dequantize_to_float(f);
  const auto cols = static_cast<std::int64_t>(x.size());
  std::vector<double> y(static_cast<std::size_t>(rows), 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) y[r] += double{w[r * cols + c]} * x[c];
  return y;
}

TEST(PackedWeightFile, Int8FileEqualsPackingTheFloats) {
  const ScratchDir dir;
  for (const auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{16, 64}, {7, 129}, {33, 300}}) {
    const Layer l = make_layer(rows, cols, 11);
    io::write_npy<float>(dir.file("w.npy"), TensorView<const float>(l.w.data(), {rows, cols}));
    quantize_file(dir.file("w.npy"), dir.file("w.npz"), int_options(8, 0));
    const kernels::Int8Weights loaded = load_int8_weights(dir.file("w.npz"));
    const kernels::Int8Weights direct = kernels::pack_int8(l.w, rows, cols);
    EXPECT_EQ(loaded.scales, direct.scales);
    EXPECT_EQ(loaded.row_sums, direct.row_sums);
    EXPECT_TRUE(std::equal(loaded.codes.begin(), loaded.codes.end(), direct.codes.begin(), direct.codes.end()));
    EXPECT_EQ(gemv_of(loaded, l.x, rows), gemv_of(direct, l.x, rows));
  }
}

TEST(PackedWeightFile, Int4FileEqualsPackingTheFloats) {
  const ScratchDir dir;
  for (const std::int64_t group : {32, 64, 128}) {
    SCOPED_TRACE("group " + std::to_string(group));
    const Layer l = make_layer(9, 256, 5);
    io::write_npy<float>(dir.file("w.npy"), TensorView<const float>(l.w.data(), {l.rows, l.cols}));
    quantize_file(dir.file("w.npy"), dir.file("w.npz"), int_options(4, group));
    const kernels::Int4Weights loaded = load_int4_weights(dir.file("w.npz"));
    const kernels::Int4Weights direct = kernels::pack_int4(l.w, l.rows, l.cols, group);
    EXPECT_EQ(loaded.scales, direct.scales);
    EXPECT_TRUE(std::equal(loaded.packed.begin(), loaded.packed.end(), direct.packed.begin(), direct.packed.end()));
    EXPECT_EQ(gemv_of(loaded, l.x, l.rows), gemv_of(direct, l.x, l.rows));
  }
}

// Float16 scales, the full range rule (negative scales) and a conv weight's flattened rows: the GEMV on
// the loaded weights computes dequantize(file) x (to the activations' int8 quantization).
TEST(PackedWeightFile, Int4VariantsComputeTheFilesValues) {
  const ScratchDir dir;
  const Layer l = make_layer(8, 3 * 32, 21);
  io::write_npy<float>(dir.file("conv.npy"), TensorView<const float>(l.w.data(), {8, 3, 4, 8}));
  for (const RangeRule rule : {RangeRule::kPyTorch, RangeRule::kFull}) {
    FileQuantOptions o = int_options(4, 32);
    o.spec.scale_dtype = ScaleDType::kFloat16;
    o.spec.range_rule = rule;
    quantize_file(dir.file("conv.npy"), dir.file("c.npz"), o);
    const io::QuantizedFile f = io::read_quantized(dir.file("c.npz"));
    const std::vector<float> y = gemv_of(load_int4_weights(f, "c.npz"), l.x, l.rows);
    const std::vector<double> want = reference_gemv(f, l.x, l.rows);
    double scale = 0;
    for (const double v : want) scale = std::max(scale, std::fabs(v));
    for (std::int64_t r = 0; r < l.rows; ++r) EXPECT_NEAR(y[r], want[r], 0.02 * scale) << "row " << r;
  }
}

TEST(PackedWeightFile, RefusesWhatTheKernelsCannotTake) {
  const ScratchDir dir;
  const Layer l = make_layer(4, 64, 3);
  io::write_npy<float>(dir.file("w.npy"), TensorView<const float>(l.w.data(), {l.rows, l.cols}));
  auto refused = [&](const FileQuantOptions& o, bool int4, const std::string& phrase) {
    quantize_file(dir.file("w.npy"), dir.file("bad.npz"), o);
    try {
      if (int4)
        (void)load_int4_weights(dir.file("bad.npz"));
      else
        (void)load_int8_weights(dir.file("bad.npz"));
      ADD_FAILURE() << phrase << ": accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad.npz"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
  };
  FileQuantOptions affine = int_options(8, 0);
  affine.spec.scheme = Scheme::kAffine;
  refused(affine, false, "symmetric codes");
  refused(int_options(4, 32), false, "signed 8-bit codes");
  refused(int_options(8, 0), true, "signed 4-bit codes");
  refused(int_options(4, 16), true, "groups of 32, 64 or 128");
  FileQuantOptions axis1 = int_options(8, 0);
  axis1.spec.axis = 1;
  refused(axis1, false, "one scale per row");
  FileQuantOptions nf4 = int_options(4, 64);
  nf4.element = ElementFormat::kNf4;
  refused(nf4, true, "io::nf4_view");
}

}  // namespace
}  // namespace qk
