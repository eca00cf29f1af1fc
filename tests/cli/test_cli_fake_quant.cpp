// qtool fake-quant: the input's dtype kept, the values of quantize then dequantize; the --json reports of
// fake-quant and dequantize.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>

#include "cli_fixture.hpp"
#include "quantkit/core/half.hpp"

namespace qk::cli_test {
namespace {

struct FloatType {
  const char* name;  // the --dtype of dequantize
  const char* descr;
  io::DType dtype;
};

void PrintTo(const FloatType& c, std::ostream* os) { *os << c.name; }

class CliFakeQuant : public Cli, public testing::WithParamInterface<FloatType> {};

// fake-quant writes the input's dtype, with the values of quantize followed by dequantize in that dtype.
TEST_P(CliFakeQuant, KeepsTheDtype) {
  const auto x = weights(4, 64);
  const FloatType& t = GetParam();
  if (t.dtype == io::DType::kFloat16) {
    std::vector<half> h(x.size());
    std::ranges::transform(x, h.begin(), [](float v) { return half(v); });
    write("w.npy", npy_of(t.descr, {4, 64}, h));
  } else if (t.dtype == io::DType::kFloat64) {
    write("w.npy", npy_of(t.descr, {4, 64}, std::vector<double>(x.begin(), x.end())));
  } else {
    write("w.npy", npy_of(t.descr, {4, 64}, x));
  }
  for (const std::vector<std::string>& spec :
       {std::vector<std::string>{}, {"--bits", "4", "--group-size", "16"}, {"--affine", "--per-tensor"}}) {
    std::vector<std::string> fake{"fake-quant", "w.npy", "-o", "fq.npy"};
    std::vector<std::string> quant{"quantize", "w.npy", "-o", "q.npz"};
    fake.insert(fake.end(), spec.begin(), spec.end());
    quant.insert(quant.end(), spec.begin(), spec.end());
    SCOPED_TRACE(joined(fake));
    ok(fake);
    ok(quant);
    ok({"dequantize", "q.npz", "-o", "d.npy", "--dtype", t.name});
    const io::NpyArray fq = io::read_npy(path("fq.npy").string());
    const io::NpyArray d = io::read_npy(path("d.npy").string());
    EXPECT_EQ(fq.dtype(), t.dtype);
    EXPECT_EQ(fq.shape(), (Shape{4, 64}));
    EXPECT_TRUE(std::ranges::equal(fq.raw(), d.raw()));
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CliFakeQuant,
                         testing::Values(FloatType{"f16", "<f2", io::DType::kFloat16},
                                         FloatType{"f32", "<f4", io::DType::kFloat32},
                                         FloatType{"f64", "<f8", io::DType::kFloat64}),
                         [](const testing::TestParamInfo<FloatType>& info) {
                           return std::string(info.param.name);
                         });

using CliJson = Cli;

TEST_F(CliJson, FakeQuantAndDequantize) {
  write_weights();
  const json f = json::parse(ok({"fake-quant", "w.npy", "-o", "fq.npy", "--json", "--affine"}).out);
  expect_keys(f, {"input", "output", "shape", "bits", "scheme", "output_bytes", "peak_rss_bytes"});
  EXPECT_EQ(f["scheme"], "affine");
  EXPECT_EQ(f["output_bytes"], fs::file_size(path("fq.npy")));
  // The error summary fake-quant's help promises, against a recomputation from the two files.
  const std::vector<float> w = weights(4, 64);
  const std::vector<float> fq = io::read_npy(path("fq.npy").string()).to_vector<float>();
  double sse = 0, signal = 0, max_abs = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double e = double(w[i]) - fq[i];
    sse += e * e;
    signal += double(w[i]) * w[i];
    max_abs = std::max(max_abs, std::abs(e));
  }
  ASSERT_TRUE(f.contains("error")) << f.dump();
  EXPECT_NEAR(f["error"]["mse"].get<double>(), sse / w.size(), 1e-9 * sse / w.size() + 1e-18);
  EXPECT_DOUBLE_EQ(f["error"]["max_abs"].get<double>(), max_abs);
  EXPECT_NEAR(f["error"]["sqnr_db"].get<double>(), 10 * std::log10(signal / sse), 1e-6);
  EXPECT_THAT(ok({"fake-quant", "w.npy", "-o", "fq4.npy", "--bits", "4"}).out,
              HasSubstr("error vs input: MSE"));
  ok({"quantize", "w.npy", "-o", "q.npz"});
  const json d = json::parse(ok({"dequantize", "q.npz", "-o", "d.npy", "--dtype", "f64", "--json"}).out);
  expect_keys(d, {"input", "output", "shape", "dtype", "bits", "output_bytes"});
  EXPECT_EQ(d["dtype"], "float64");
  EXPECT_EQ(d["shape"], json({4, 64}));
  EXPECT_EQ(d["output_bytes"], fs::file_size(path("d.npy")));
}

// --format and --method: fake-quant writes exactly what quantize with the same flags dequantizes to, and
// reports its error against the input.
TEST_F(Cli, FakeQuantTakesFormatsAndMethods) {
  write_weights();
  write("x.npy", npy_of("<f4", {32, 64}, weights(32, 64)));
  const std::vector<std::vector<std::string>> cases = {
      {"--format", "nf4"},
      {"--format", "fp8-e4m3"},
      {"--method", "gptq", "--acts", "x.npy", "--group-size", "32"},
      {"--method", "awq", "--acts", "x.npy", "--group-size", "32", "--scale-dtype", "f16"},
  };
  for (const auto& flags : cases) {
    SCOPED_TRACE(flags[1]);
    std::vector<std::string> fake{"fake-quant", "w.npy", "-o", "f.npy", "--json"};
    fake.insert(fake.end(), flags.begin(), flags.end());
    const json j = json::parse(ok(fake).out);
    ASSERT_TRUE(j.contains("error")) << j.dump();
    EXPECT_GT(j["error"]["mse"].get<double>(), 0.0);
    std::vector<std::string> quant{"quantize", "w.npy", "-o", "q.npz"};
    quant.insert(quant.end(), flags.begin(), flags.end());
    ok(quant);
    ok({"dequantize", "q.npz", "-o", "d.npy"});
    const auto f = io::read_npy(path("f.npy").string()).to_vector<float>();
    EXPECT_EQ(f, io::read_npy(path("d.npy").string()).to_vector<float>());
    double mse = 0;
    const auto w = weights(4, 64);
    for (std::size_t i = 0; i < w.size(); ++i) mse += (double{w[i]} - f[i]) * (double{w[i]} - f[i]);
    EXPECT_NEAR(j["error"]["mse"].get<double>(), mse / static_cast<double>(w.size()), 1e-9);
  }
  EXPECT_EQ(qtool({"fake-quant", "w.npy", "-o", "f.npz", "--method", "gptq", "--acts", "x.npy"}).exit_code, 2);
  EXPECT_EQ(qtool({"fake-quant", "w.npy", "-o", "f.npy", "--format", "nf4", "--method", "gptq"}).exit_code, 2);
}

}  // namespace
}  // namespace qk::cli_test
