// The quantized-tensor file: streamed quantize_file (many small chunks, packed widths) against the
// in-memory API, empty tensors, and read_quantized refusing malformed files with a clear error.
#include <gtest/gtest.h>

#include <random>

#include "io_test_util.hpp"
#include "quantkit/quantkit.hpp"

namespace qk::io {
namespace {

using test::ScratchDir;

std::vector<float> random_values(std::size_t n, std::uint32_t seed) {
  return test::normal_values(n, seed, 0.1f, 1.5f);
}

struct PackCase {
  int bits;
  bool is_signed;
  Granularity granularity;
};

TEST(QuantizeFile, SmallChunksAndPackedWidthsMatchTheInMemoryResult) {
  const ScratchDir dir;
  const Shape shape{7, 48};
  const auto seed = static_cast<std::uint32_t>(::testing::UnitTest::GetInstance()->random_seed());
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<float> x = random_values(static_cast<std::size_t>(shape_numel(shape)), seed);
  write_npy<float>(dir.file("x.npy"), TensorView<const float>(x.data(), shape));
  for (const PackCase pc :
       {PackCase{2, true, Granularity::kPerGroup}, PackCase{3, false, Granularity::kPerChannel},
        PackCase{4, true, Granularity::kPerGroup}, PackCase{5, true, Granularity::kPerTensor},
        PackCase{8, false, Granularity::kPerChannel}}) {
    for (const std::int64_t chunk : {8, 24, 40, 1 << 20}) {
      SCOPED_TRACE("bits " + std::to_string(pc.bits) + " chunk " + std::to_string(chunk));
      FileQuantOptions options;
      options.spec.bits = pc.bits;
      options.spec.is_signed = pc.is_signed;
      options.spec.scheme = pc.is_signed ? Scheme::kSymmetric : Scheme::kAffine;
      options.spec.granularity = pc.granularity;
      options.spec.group_size = 16;
      options.chunk_elements = chunk;
      quantize_file(dir.file("x.npy"), dir.file("q.npz"), options);

      const TensorView<const float> view(x.data(), shape);
      const QuantParams want = choose_qparams<float>(view, options.spec);
      std::vector<std::int32_t> want_codes(x.size());
      quantize<float, std::int32_t>(view, want, want_codes);

      const QuantizedFile file = read_quantized(dir.file("q.npz"));
      EXPECT_EQ(file.params.scale, want.scale);
      EXPECT_EQ(file.params.zero_point, want.zero_point);
      EXPECT_EQ(unpack_codes(file), want_codes);
      EXPECT_EQ(file.meta.code_bits, pc.bits);

      std::vector<float> want_back(x.size());
      dequantize<std::int32_t, float>(TensorView<const std::int32_t>(want_codes.data(), shape), want,
                                      want_back);
      dequantize_file(dir.file("q.npz"), dir.file("back.npy"));
      EXPECT_EQ(read_npy(dir.file("back.npy")).to_vector<float>(), want_back);
    }
  }
}

TEST(QuantizeFile, EmptyTensorsRoundTrip) {
  const ScratchDir dir;
  for (const Shape& shape : {Shape{0, 4}, Shape{4, 0}, Shape{0}}) {
    SCOPED_TRACE(shape_string(shape));
    write_npy(dir.file("e.npy"), DType::kFloat32, shape, {});
    FileQuantOptions options;
    options.spec = default_weight_spec(static_cast<int>(shape.size()));
    quantize_file(dir.file("e.npy"), dir.file("e.npz"), options);
    const QuantizedFile file = read_quantized(dir.file("e.npz"));
    EXPECT_EQ(file.meta.shape, shape);
    dequantize_file(dir.file("e.npz"), dir.file("back.npy"));
    EXPECT_EQ(read_npy(dir.file("back.npy")).shape(), shape);
  }
}

// A valid 4x8 per-channel file's members, which each case below spoils in one way.
struct Members {
  Shape shape{4, 8};
  std::vector<std::int8_t> q = std::vector<std::int8_t>(32, 1);
  std::vector<float> scale = {0.5f, 0.25f, 1.0f, 2.0f};
  Shape param_shape{4, 1};
  std::vector<std::int32_t> zero_point = {0, 0, 0, 0};
  std::string meta =
      R"({"format":"quantkit.qtensor/1","bits":8,"signed":true,"scheme":"symmetric","granularity":"per_channel",)"
      R"("axis":0,"group_size":null,"quant_min":-128,"quant_max":127,"reduce_range":false,"packing":"none",)"
      R"("shape":[4,8],"dtype":"float32"})";
  bool with_meta = true;

  void write(const std::string& path) const {
    NpzWriter w;
    w.add<std::int8_t>("q", shape, std::span<const std::int8_t>(q));
    w.add<float>("scale", param_shape, std::span<const float>(scale));
    w.add<std::int32_t>("zero_point", param_shape, std::span<const std::int32_t>(zero_point));
    if (with_meta) w.add_encoded("meta", encode_npy_string(meta));
    w.write(path);
  }
};

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

void expect_rejected(const Members& m, const std::string& phrase) {
  const ScratchDir dir;
  const std::string path = dir.file("bad.npz");
  m.write(path);
  try {
    (void)read_quantized(path);
    ADD_FAILURE() << "accepted a file that should fail with '" << phrase << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(phrase), std::string::npos) << what;
  }
}

TEST(ReadQuantized, AcceptsTheValidBaseline) {
  const ScratchDir dir;
  Members().write(dir.file("ok.npz"));
  EXPECT_EQ(read_quantized(dir.file("ok.npz")).params.scale.size(), 4u);
}

TEST(ReadQuantized, RejectsMalformedFiles) {
  Members m;
  m.with_meta = false;
  expect_rejected(m, "'meta' is missing");
  m = Members();
  m.meta = "not json";
  expect_rejected(m, "malformed meta JSON");
  m = Members();
  m.meta = replaced(m.meta, R"("bits":8)", R"("bits":8.7)");
  expect_rejected(m, "'bits' must be an integer");
  m = Members();
  m.meta = replaced(m.meta, R"("axis":0)", R"("axis":4294967296)");
  expect_rejected(m, "'axis' is out of range");
  m = Members();
  m.meta = replaced(m.meta, R"("axis":0)", R"("axis":2)");
  expect_rejected(m, "axis 2 is out of range");
  m = Members();
  m.meta = replaced(m.meta, R"("format":"quantkit.qtensor/1")", R"("format":"other/9")");
  expect_rejected(m, "meta format");
  m = Members();
  m.meta = replaced(m.meta, R"("shape":[4,8])", R"("shape":[4611686018427387904,8])");
  expect_rejected(m, "overflow");
  m = Members();
  m.zero_point[2] = 500;
  expect_rejected(m, "zero point 500 lies outside");
  m = Members();
  m.scale[1] = 0.0f;
  expect_rejected(m, "not usable");
  m = Members();
  m.scale.pop_back();
  m.zero_point.pop_back();
  m.param_shape = {3, 1};
  expect_rejected(m, "does not match");
  m = Members();
  m.shape = {32};
  expect_rejected(m, "q must be int8");
  m = Members();
  m.meta = replaced(replaced(m.meta, R"("bits":8)", R"("bits":4)"), R"("packing":"none")",
                    R"("packing":"lsb_bitstream")");
  m.meta = replaced(replaced(m.meta, R"("quant_min":-128)", R"("quant_min":-8)"), R"("quant_max":127)",
                    R"("quant_max":7)");
  expect_rejected(m, "packed q must be uint8 with 16 bytes");
}

TEST(ReadQuantized, RejectsParameterDtypesOtherThanTheFormatsOwn) {
  const ScratchDir dir;
  const Members m;
  NpzWriter w;
  w.add<std::int8_t>("q", m.shape, std::span<const std::int8_t>(m.q));
  const std::vector<double> scale64(m.scale.begin(), m.scale.end());
  w.add<double>("scale", m.param_shape, std::span<const double>(scale64));
  w.add<std::int32_t>("zero_point", m.param_shape, std::span<const std::int32_t>(m.zero_point));
  w.add_encoded("meta", encode_npy_string(m.meta));
  w.write(dir.file("f64.npz"));
  EXPECT_THROW(read_quantized(dir.file("f64.npz")), Error);
}

TEST(Observers, MovingAverageIgnoresEmptyBatches) {
  QuantSpec spec;
  spec.scheme = Scheme::kAffine;
  MovingAverageMinMaxObserver obs(spec);
  const std::vector<float> none;
  const std::vector<float> some{-1.0f, 2.0f};
  obs.observe<float>(TensorView<const float>(none.data(), {0}));
  obs.observe<float>(TensorView<const float>(some.data(), {2}));
  obs.observe<float>(TensorView<const float>(none.data(), {0}));
  EXPECT_EQ(obs.min_vals()[0], -1.0f);
  EXPECT_EQ(obs.max_vals()[0], 2.0f);
  EXPECT_NO_THROW(obs.qparams());
}

}  // namespace
}  // namespace qk::io
