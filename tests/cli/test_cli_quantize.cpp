// qtool quantize: the values that come back through dequantize for each spec, its --json report, and
// numpy's reading of what it writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <ostream>

#include "cli_fixture.hpp"

namespace qk::cli_test {
namespace {

// quantize -> dequantize and fake-quant: the values that come back.

using CliRoundTrip = Cli;

TEST_F(CliRoundTrip, Int8PerChannelByDefault) {
  write_weights();
  const ProcessResult r = ok({"quantize", "w.npy", "-o", "q.npz"});
  EXPECT_THAT(r.out, HasSubstr("8-bit signed symmetric per_channel"));
  const Quantized file = read_quantized_members(path("q.npz"));
  EXPECT_EQ(file.q.dtype(), io::DType::kInt8);
  EXPECT_EQ(file.q.shape(), (Shape{4, 64}));
  EXPECT_EQ(file.scale.shape(), (Shape{4, 1}));
  EXPECT_EQ(file.zero_point.shape(), (Shape{4, 1}));
  EXPECT_EQ(file.meta["granularity"], "per_channel");
  EXPECT_EQ(file.meta["axis"], 0);
  EXPECT_EQ(file.meta["bits"], 8);
  EXPECT_EQ(file.meta["packing"], "none");
  EXPECT_EQ(file.meta["shape"], json({4, 64}));
  EXPECT_EQ(file.meta["dtype"], "float32");

  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const io::NpyArray out = io::read_npy(path("d.npy").string());
  ASSERT_EQ(out.dtype(), io::DType::kFloat32);
  ASSERT_EQ(out.shape(), (Shape{4, 64}));
  const auto x = weights(4, 64);
  const auto dq = out.to_vector<float>();
  const auto q = file.q.to_vector<std::int8_t>();
  const auto scale = file.scale.to_vector<float>();
  const auto zero_point = file.zero_point.to_vector<std::int32_t>();
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t row = i / 64;
    EXPECT_EQ(zero_point[row], 0);
    EXPECT_EQ(dq[i], static_cast<float>(q[i] - zero_point[row]) * scale[row]) << "element " << i;
    expect_within_half_step(x[i], dq[i], scale[row], i);
  }
}

// The payload's bits per weight: 4-bit groups of 32 cost 5.0 with float32 scales and no zero point, 4.5
// with float16 scales (ggml's Q4_0), 6.0 affine (an int32 zero point per group).
TEST_F(CliRoundTrip, BitsPerWeight) {
  write_weights();
  auto bits = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"quantize", "w.npy", "-o", "q.npz", "--bits", "4", "--group-size", "32", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return json::parse(ok(args).out)["bits_per_weight"].get<double>();
  };
  EXPECT_DOUBLE_EQ(bits({}), 5.0);
  EXPECT_DOUBLE_EQ(bits({"--scale-dtype", "f16"}), 4.5);
  EXPECT_DOUBLE_EQ(bits({"--scale-dtype", "f16", "--range", "full"}), 4.5);
  EXPECT_DOUBLE_EQ(bits({"--affine"}), 6.0);
  const ProcessResult r = ok({"quantize", "w.npy", "-o", "q.npz", "--bits", "4", "--group-size", "32",
                              "--scale-dtype", "f16", "--range", "full"});
  EXPECT_THAT(r.out, HasSubstr("4.50 bits/weight (float16 scales, full range)"));
  const ProcessResult bad = qtool({"quantize", "w.npy", "-o", "q.npz", "--range", "full", "--affine"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--range full needs signed symmetric codes"));
}

TEST_F(CliRoundTrip, Int4PerGroup) {
  write_weights();
  const ProcessResult r = ok({"quantize", "w.npy", "-o", "q.npz", "--bits", "4", "--group-size", "32"});
  EXPECT_THAT(r.out, HasSubstr("4-bit signed symmetric per_group"));
  const Quantized file = read_quantized_members(path("q.npz"));
  EXPECT_EQ(file.q.dtype(), io::DType::kUint8);
  EXPECT_EQ(file.q.shape(), (Shape{128}));  // 256 codes of 4 bits
  EXPECT_EQ(file.scale.shape(), (Shape{4, 2}));
  EXPECT_EQ(file.meta["packing"], "lsb_bitstream");
  EXPECT_EQ(file.meta["group_size"], 32);
  EXPECT_EQ(file.meta["quant_min"], -8);
  EXPECT_EQ(file.meta["quant_max"], 7);

  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const auto dq = io::read_npy(path("d.npy").string()).to_vector<float>();
  const auto x = weights(4, 64);
  const auto scale = file.scale.to_vector<float>();
  ASSERT_EQ(dq.size(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) expect_within_half_step(x[i], dq[i], scale[i / 32], i);
}

TEST_F(CliRoundTrip, AffineUnsigned) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz", "--affine", "--unsigned"});
  const Quantized file = read_quantized_members(path("q.npz"));
  EXPECT_EQ(file.q.dtype(), io::DType::kUint8);
  EXPECT_EQ(file.q.shape(), (Shape{4, 64}));
  EXPECT_EQ(file.meta["scheme"], "affine");
  EXPECT_EQ(file.meta["signed"], false);
  EXPECT_EQ(file.meta["quant_min"], 0);
  EXPECT_EQ(file.meta["quant_max"], 255);
  const auto zero_point = file.zero_point.to_vector<std::int32_t>();
  for (const std::int32_t z : zero_point) {
    EXPECT_GE(z, 0);
    EXPECT_LE(z, 255);
  }
  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const auto dq = io::read_npy(path("d.npy").string()).to_vector<float>();
  const auto x = weights(4, 64);
  const auto scale = file.scale.to_vector<float>();
  for (std::size_t i = 0; i < x.size(); ++i) expect_within_half_step(x[i], dq[i], scale[i / 64], i);
}

TEST_F(CliRoundTrip, PerTensor) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz", "--per-tensor"});
  const Quantized file = read_quantized_members(path("q.npz"));
  EXPECT_EQ(file.scale.shape(), Shape{});
  EXPECT_EQ(file.zero_point.shape(), Shape{});
  EXPECT_EQ(file.meta["granularity"], "per_tensor");
  const float scale = file.scale.to_vector<float>()[0];
  // Symmetric signed 8-bit: scale = max |x| / 127.5 (PyTorch's rule; the largest row has |x| up to 1).
  const auto x = weights(4, 64);
  float amax = 0;
  for (const float v : x) amax = std::max(amax, std::fabs(v));
  EXPECT_FLOAT_EQ(scale, amax / 127.5f);
  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const auto dq = io::read_npy(path("d.npy").string()).to_vector<float>();
  for (std::size_t i = 0; i < x.size(); ++i) expect_within_half_step(x[i], dq[i], scale, i);
}

TEST_F(CliRoundTrip, FixedScaleAndZeroPoint) {
  std::vector<float> x = weights(4, 64);
  x[5] = 10.0f;   // past the top code: clamps to (127 - 3) * 0.05
  x[6] = -10.0f;  // past the bottom code: clamps to (-128 - 3) * 0.05
  write("w.npy", npy_of("<f4", {4, 64}, x));
  ok({"quantize", "w.npy", "-o", "q.npz", "--scale", "0.05", "--zero-point", "3"});
  const Quantized file = read_quantized_members(path("q.npz"));
  EXPECT_EQ(file.scale.to_vector<float>(), std::vector<float>{0.05f});
  EXPECT_EQ(file.zero_point.to_vector<std::int32_t>(), std::vector<std::int32_t>{3});
  EXPECT_EQ(file.meta["granularity"], "per_tensor");
  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const auto dq = io::read_npy(path("d.npy").string()).to_vector<float>();
  EXPECT_EQ(dq[5], 124.0f * 0.05f);
  EXPECT_EQ(dq[6], -131.0f * 0.05f);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (i != 5 && i != 6) expect_within_half_step(x[i], dq[i], 0.05f, i);
  }
}

TEST_F(CliRoundTrip, AllowNonfiniteSaturates) {
  std::vector<float> x = weights(4, 64);
  x[1 * 64 + 2] = std::numeric_limits<float>::quiet_NaN();
  x[2 * 64 + 3] = std::numeric_limits<float>::infinity();
  x[3 * 64 + 0] = -std::numeric_limits<float>::infinity();
  write("nan.npy", npy_of("<f4", {4, 64}, x));
  const ProcessResult r =
      ok({"quantize", "nan.npy", "-o", "q.npz", "--per-tensor", "--allow-nonfinite", "--json"});
  EXPECT_EQ(json::parse(r.out)["nonfinite"], 3);
  const Quantized file = read_quantized_members(path("q.npz"));
  const float scale = file.scale.to_vector<float>()[0];
  // NaN and Inf are left out of the observed range: the scale comes from the finite values alone.
  float amax = 0;
  for (const float v : x) {
    if (std::isfinite(v)) amax = std::max(amax, std::fabs(v));
  }
  EXPECT_FLOAT_EQ(scale, amax / 127.5f);
  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const auto dq = io::read_npy(path("d.npy").string()).to_vector<float>();
  EXPECT_EQ(dq[1 * 64 + 2], 0.0f);             // NaN -> the zero point
  EXPECT_EQ(dq[2 * 64 + 3], 127.0f * scale);   // +Inf -> qmax
  EXPECT_EQ(dq[3 * 64 + 0], -128.0f * scale);  // -Inf -> qmin
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isfinite(x[i])) expect_within_half_step(x[i], dq[i], scale, i);
  }

  // Per channel the saturation uses each row's own range; fake-quant does the same in float.
  ok({"quantize", "nan.npy", "-o", "pc.npz", "--allow-nonfinite"});
  ok({"dequantize", "pc.npz", "-o", "pc.npy"});
  ok({"fake-quant", "nan.npy", "-o", "fq.npy", "--allow-nonfinite"});
  const auto row_scale = read_quantized_members(path("pc.npz")).scale.to_vector<float>();
  const auto pc = io::read_npy(path("pc.npy").string()).to_vector<float>();
  EXPECT_EQ(pc[1 * 64 + 2], 0.0f);
  EXPECT_EQ(pc[2 * 64 + 3], 127.0f * row_scale[2]);
  EXPECT_EQ(pc[3 * 64 + 0], -128.0f * row_scale[3]);
  EXPECT_EQ(read_file(path("fq.npy")), read_file(path("pc.npy")));
}

// --json: stdout is one JSON document with the documented keys.

using CliJson = Cli;

TEST_F(CliJson, Quantize) {
  write_weights();
  const ProcessResult r = ok({"quantize", "w.npy", "-o", "q.npz", "--json"});
  const json j = json::parse(r.out);  // the whole of stdout is one JSON document
  expect_keys(j, {"input", "output", "shape", "dtype", "bits", "signed", "scheme", "granularity", "quant_min",
                  "quant_max", "scales", "input_bytes", "output_bytes", "nonfinite", "seconds", "gb_per_s",
                  "peak_rss_bytes"});
  EXPECT_EQ(j["input"], "w.npy");
  EXPECT_EQ(j["output"], "q.npz");
  EXPECT_EQ(j["shape"], json({4, 64}));
  EXPECT_EQ(j["dtype"], "float32");
  EXPECT_EQ(j["bits"], 8);
  EXPECT_EQ(j["signed"], true);
  EXPECT_EQ(j["scheme"], "symmetric");
  EXPECT_EQ(j["granularity"], "per_channel");
  EXPECT_EQ(j["quant_min"], -128);
  EXPECT_EQ(j["quant_max"], 127);
  EXPECT_EQ(j["scales"], 4);
  EXPECT_EQ(j["input_bytes"], 4 * 64 * 4);
  EXPECT_EQ(j["output_bytes"], fs::file_size(path("q.npz")));
  EXPECT_EQ(j["nonfinite"], 0);
  EXPECT_GT(j["peak_rss_bytes"].get<std::uint64_t>(), 0u);
  // seconds and gb_per_s describe one run: consistent with each other (bytes read / time), not a speed.
  if (j["seconds"].get<double>() > 0)
    EXPECT_NEAR(j["gb_per_s"].get<double>(), 4 * 64 * 4 / j["seconds"].get<double>() / 1e9,
                1e-6 + 1e-3 * j["gb_per_s"].get<double>());

  // --json before the subcommand means the same.
  const json g = json::parse(
      ok({"--json", "quantize", "w.npy", "-o", "q2.npz", "--bits", "4", "--group-size", "32"}).out);
  EXPECT_EQ(g["bits"], 4);
  EXPECT_EQ(g["granularity"], "per_group");
  EXPECT_EQ(g["scales"], 8);
}

struct InteropCase {
  const char* name;
  Shape shape;
  std::vector<std::string> args;
};

void PrintTo(const InteropCase& c, std::ostream* os) { *os << c.name; }

class CliNumpy : public Cli, public testing::WithParamInterface<InteropCase> {};

// tests/cli/check_qfile.py decodes qtool's .npz with numpy alone (np.load without pickles, the meta JSON,
// the packed bit layout) and requires (q - zero_point) * scale to equal qtool dequantize's output exactly.
TEST_P(CliNumpy, DecodesWhatQtoolWrites) {
  const std::string python = numpy_python();
  if (python.empty())
    GTEST_SKIP() << "no python3 that imports numpy (QK_PYTHON3 is empty): apt-get install python3-numpy";
  const InteropCase& c = GetParam();
  // A conv weight [out, in, kh, kw] is a layer of in * kh * kw columns (its inputs: im2col patches).
  const std::int64_t columns = shape_numel(c.shape) / c.shape[0];
  write("w.npy", npy_of("<f4", c.shape, weights(c.shape[0], columns)));
  write("x.npy", npy_of("<f4", {16, columns}, weights(16, columns)));  // for --method --acts
  std::vector<std::string> quant{"quantize", "w.npy", "-o", "q.npz"};
  quant.insert(quant.end(), c.args.begin(), c.args.end());
  ok(quant);
  ok({"dequantize", "q.npz", "-o", "d.npy"});
  const ProcessResult r =
      run_process({python, std::string(QK_SOURCE_DIR) + "/tests/cli/check_qfile.py", "q.npz", "d.npy"},
                  folder_.path().string());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Formats, CliNumpy,
    testing::Values(InteropCase{"Int8PerChannel", {4, 64}, {}},
                    InteropCase{
                        "Uint8AffinePerChannelAxis1", {4, 64}, {"--affine", "--unsigned", "--axis", "1"}},
                    InteropCase{"Int8PerTensor", {4, 64}, {"--per-tensor"}},
                    InteropCase{"Int4PerGroup", {4, 64}, {"--bits", "4", "--group-size", "32"}},
                    InteropCase{"Int4F16ScalesFullRange",
                                {4, 64},
                                {"--bits", "4", "--group-size", "32", "--scale-dtype", "f16", "--range", "full"}},
                    InteropCase{"Nf4F16Scales", {4, 128}, {"--format", "nf4", "--scale-dtype", "f16"}},
                    InteropCase{"GptqF16Scales",
                                {4, 64},
                                {"--method", "gptq", "--acts", "x.npy", "--group-size", "32", "--scale-dtype", "f16"}},
                    InteropCase{"Uint4AffinePerTensorOddCount",
                                {3, 5},
                                {"--bits", "4", "--unsigned", "--affine", "--per-tensor"}},
                    InteropCase{"Int3PerChannel", {5, 7}, {"--bits", "3"}},
                    InteropCase{"Int2PerGroup", {2, 12}, {"--bits", "2", "--group-size", "4"}},
                    InteropCase{"Fp8E4m3PerChannel", {4, 64}, {"--format", "fp8-e4m3"}},
                    InteropCase{"Fp8E5m2PerTensor", {3, 5}, {"--format", "fp8-e5m2", "--per-tensor"}},
                    InteropCase{"Nf4Groups", {4, 128}, {"--format", "nf4"}},
                    InteropCase{"Nf4PerChannelOddCount", {3, 5}, {"--format", "nf4", "--axis", "0"}},
                    // input_scale: the codes are W * s per input channel; the tensor is their values / s.
                    InteropCase{"AwqInt4Groups",
                                {4, 64},
                                {"--method", "awq", "--acts", "x.npy", "--bits", "4", "--group-size", "32"}},
                    InteropCase{"SmoothQuantInt8", {4, 64}, {"--method", "smoothquant", "--acts", "x.npy"}},
                    // Conv weights: groups that do not divide kw run along the flattened rows (in * kh * kw).
                    InteropCase{"ConvInt4GroupsAlongFlattenedRows", {8, 3, 3, 3}, {"--bits", "4", "--group-size", "27"}},
                    InteropCase{"ConvNf4GroupsAlongFlattenedRows", {8, 4, 3, 3}, {"--format", "nf4", "--group-size", "12"}},
                    InteropCase{"ConvGptq", {8, 3, 3, 3}, {"--method", "gptq", "--acts", "x.npy", "--group-size", "27"}},
                    InteropCase{"ConvAwq", {8, 3, 3, 3}, {"--method", "awq", "--acts", "x.npy", "--group-size", "9"}}),
    [](const testing::TestParamInfo<InteropCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace qk::cli_test
