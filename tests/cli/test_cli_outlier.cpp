// qtool quantize --method and --format as a child process: every method writes a quantized file that qtool
// dequantize reads back (input_scale undone for awq and smoothquant), FP8/NF4 files likewise, qtool inspect
// reports the method and compares the files of one layer (weight and output error), and bad calibration
// input or misused flags fail cleanly, writing nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/cli_test_util.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/files/quantize_file.hpp"

namespace qk::cli_test {
namespace {

using nlohmann::json;

void write_layer(const TempFolder& dir) {
  std::mt19937 gen(1);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> w(32 * 64), x(500 * 64);
  for (auto& v : w) v = 0.1f * d(gen);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = d(gen) * (i % 64 == 7 ? 30.0f : 1.0f);
  io::write_npy<float>(dir.file("w.npy"), TensorView<const float>(w.data(), {32, 64}));
  io::write_npy<float>(dir.file("x.npy"), TensorView<const float>(x.data(), {500, 64}));
  io::write_npy<float>(dir.file("x3.npy"),
                       TensorView<const float>(x.data(), {5, 10, 64}));  // rank 3 works too
}

TEST(CliOutlier, EveryMethodWritesAFileThatDequantizes) {
  TempFolder dir;
  write_layer(dir);
  std::map<std::string, double> output_error;
  for (const char* method : {"rtn", "importance", "awq", "gptq", "smoothquant"}) {
    const std::string out = std::string(method) + ".npz";
    const auto r = run_qtool({"quantize", "w.npy", "-o", out, "--method", method, "--acts", "x.npy", "--acts",
                              "x3.npy", "--bits", "4", "--group-size", "32", "--json"},
                             dir.path().string());
    ASSERT_EQ(r.exit_code, 0) << method << ": " << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["calibration_rows"], 550) << method;
    const io::QuantizedFile q = io::read_quantized(dir.file(out));
    EXPECT_EQ(q.meta.spec.bits, 4);
    const bool scaled = std::string(method) == "awq" || std::string(method) == "smoothquant";
    EXPECT_EQ(q.input_scale.empty(), !scaled) << method;
    // dequantize undoes input_scale: the weights come back close to the originals.
    const auto d =
        run_qtool({"dequantize", out, "-o", std::string(method) + "_back.npy"}, dir.path().string());
    ASSERT_EQ(d.exit_code, 0) << d.err;
    const auto back = io::read_npy(dir.file(std::string(method) + "_back.npy")).to_vector<float>();
    const auto w = io::read_npy(dir.file("w.npy")).to_vector<float>();
    double mse = 0;
    for (std::size_t i = 0; i < w.size(); ++i) mse += (back[i] - w[i]) * (back[i] - w[i]);
    EXPECT_NEAR(mse / w.size(), j["weight_mse"].get<double>(), 1e-9) << method;
    // The output error on the calibration rows, recomputed here from the dequantized file: the sum over
    // rows x of ||(W - W_q) x||^2 (x.npy's 500 rows and x3.npy's 50).
    const auto x = io::read_npy(dir.file("x.npy")).to_vector<float>();
    double out_err = 0;
    for (std::size_t r = 0; r < 500 + 50; ++r) {
      const float* xr = x.data() + (r % 500) * 64;  // x3.npy holds x's first 50 rows
      for (std::size_t o = 0; o < 32; ++o) {
        double e = 0;
        for (std::size_t i = 0; i < 64; ++i) e += (double(w[o * 64 + i]) - back[o * 64 + i]) * xr[i];
        out_err += e * e;
      }
    }
    output_error[method] = out_err;
    // What qtool reports is the same in GPTQ's units (H = 2 X^T X / rows): 2 / 550 times the sum above.
    if (j.contains("output_error") && j["output_error"].get<double>() > 0)
      EXPECT_NEAR(j["output_error"].get<double>(), out_err * 2 / 550, 1e-3 * out_err * 2 / 550)
          << method << ": reported vs recomputed";
  }
  // GPTQ and AWQ exist to lower the output error below RTN's with the same bits and groups.
  EXPECT_LT(output_error["gptq"], output_error["rtn"]);
  EXPECT_LT(output_error["awq"], output_error["rtn"]);
}

TEST(CliOutlier, BadCalibrationInputFailsAndWritesNothing) {
  TempFolder dir;
  write_layer(dir);
  std::vector<float> narrow(10 * 48, 1.0f), nan(10 * 64, 1.0f);
  nan[5 * 64 + 9] = NAN;  // row 5 of its own file, whatever was read before it
  io::write_npy<float>(dir.file("narrow.npy"), TensorView<const float>(narrow.data(), {10, 48}));
  io::write_npy<float>(dir.file("nan.npy"), TensorView<const float>(nan.data(), {10, 64}));
  std::vector<float> conv(4 * 4 * 3, 1.0f);
  io::write_npy<float>(dir.file("conv.npy"), TensorView<const float>(conv.data(), {4, 4, 3}));
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {{"--method", "awq", "--acts", "narrow.npy"}, 1, "do not end in the weight's 64 inputs"},
      {{"--method", "gptq", "--acts", "x.npy", "--acts", "nan.npy"},
       1,
       "nan.npy: non-finite activation at row 5, column 9"},
      {{"--method", "gptq"}, 2, "needs --acts"},
      {{"--method", "magic", "--acts", "x.npy"}, 2, "unknown method"},
      {{"--method", "gptq", "--acts", "x.npy", "--affine"}, 2, "takes only --bits, --group-size, --scale-dtype and --range"},
      {{"--method", "gptq", "--acts", "x.npy", "--group-size", "48"}, 1, "does not divide"},
      {{"--acts", "x.npy"}, 2, "are for --method"},
      {{"--damp", "0.1"}, 2, "are for --method"},
      {{"--method", "rtn", "--act-order"}, 2, "gptq options"},
      {{"--method", "awq", "--acts", "x.npy", "--alpha", "0.3"}, 2, "smoothquant option"},
      {{"--format", "nf4", "--bits", "4"}, 2, "--format nf4 fixes the codes"},
      {{"--format", "fp8-e4m3", "--affine"}, 2, "fixes the codes"},
      {{"--format", "fp8-e4m3", "--method", "gptq", "--acts", "x.npy"},
       2,
       "--plan and --method make integer"},
      {{"--format", "fp7"}, 2, "unknown element format 'fp7'"},
      {{"--format", "nf4", "--explain"}, 2, "has no preset"},
      {{"--format", "nf4", "--group-size", "48"}, 1, "does not divide"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"quantize", "w.npy", "-o", "out.npz"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const auto before = snapshot(dir.path());
    const auto r = run_qtool(args, dir.path().string());
    EXPECT_EQ(r.exit_code, c.code) << c.fragment << ": " << r.err;
    EXPECT_NE(r.err.find(c.fragment), std::string::npos) << r.err;
    EXPECT_EQ(snapshot(dir.path()), before) << c.fragment;
  }
  // A conv weight is a layer of its flattened rows (in * k... columns); a vector is no layer.
  const auto conv_run = run_qtool({"quantize", "conv.npy", "-o", "out.npz", "--method", "rtn", "--json"},
                              dir.path().string());
  EXPECT_EQ(conv_run.exit_code, 0) << conv_run.err;
  EXPECT_EQ(io::read_quantized(dir.file("out.npz")).meta.shape, (Shape{4, 4, 3}));
  std::filesystem::remove(dir.file("out.npz"));
  const std::vector<float> bias(4, 1.0f);
  io::write_npy<float>(dir.file("bias.npy"), TensorView<const float>(bias.data(), {4}));
  const auto r = run_qtool({"quantize", "bias.npy", "-o", "out.npz", "--method", "rtn"}, dir.path().string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("expected a linear layer's weight [out, in] or a conv weight"), std::string::npos) << r.err;
}

TEST(CliOutlier, FormatsBeyondIntegersRoundTripThroughQtool) {
  TempFolder dir;
  write_layer(dir);
  const auto w = io::read_npy(dir.file("w.npy")).to_vector<float>();
  std::map<std::string, double> mse;
  for (const char* format : {"int", "fp8-e4m3", "fp8-e5m2", "nf4"}) {
    const std::string out = std::string(format) + ".npz";
    std::vector<std::string> args = {"quantize", "w.npy", "-o", out, "--format", format, "--json"};
    if (std::string(format) == "int") args.insert(args.end(), {"--bits", "4", "--group-size", "64"});
    const auto r = run_qtool(args, dir.path().string());
    ASSERT_EQ(r.exit_code, 0) << format << ": " << r.err;
    const json report = json::parse(r.out);
    EXPECT_EQ(report["format"], format);
    // What the file holds: unsigned codes for the codebook formats, signed INT4 here.
    EXPECT_EQ(report["signed"], std::string(format) == "int") << format;
    const io::QuantizedFile q = io::read_quantized(dir.file(out));
    EXPECT_EQ(std::string(to_string(q.meta.element)), format);
    // 32 scales: groups of 64 (int here, nf4 by default) or one per output channel (fp8 by default).
    EXPECT_EQ(q.params.scale.size(), 32u) << format;
    ASSERT_EQ(run_qtool({"dequantize", out, "-o", "back.npy"}, dir.path().string()).exit_code, 0);
    const auto back = io::read_npy(dir.file("back.npy")).to_vector<float>();
    EXPECT_EQ(back, dequantize_to_float(q)) << format;
    double e = 0;
    for (std::size_t i = 0; i < w.size(); ++i) e += (back[i] - w[i]) * (back[i] - w[i]);
    mse[format] = e / static_cast<double>(w.size());
  }
  // What the formats are for: E4M3's 3 mantissa bits beat E5M2's 2, and NF4 beats INT4 on Gaussian weights
  // with one scale per 64 values.
  EXPECT_LT(mse["fp8-e4m3"], mse["fp8-e5m2"]);
  EXPECT_LT(mse["nf4"], mse["int"]);
  EXPECT_LT(mse["fp8-e5m2"], mse["nf4"]);
}

TEST(CliOutlier, InspectReportsTheMethodAndComparesTheFilesOfALayer) {
  TempFolder dir;
  write_layer(dir);
  for (const char* method : {"rtn", "gptq"}) {
    const auto r = run_qtool({"quantize", "w.npy", "-o", std::string(method) + ".npz", "--method", method,
                              "--acts", "x.npy", "--bits", "3", "--group-size", "32"},
                             dir.path().string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  ASSERT_EQ(run_qtool({"quantize", "w.npy", "-o", "nf4.npz", "--format", "nf4", "--group-size", "32"},
                      dir.path().string())
                .exit_code,
            0);
  const auto one = run_qtool({"inspect", "gptq.npz"}, dir.path().string());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.out.find("method gptq: 500 calibration rows"), std::string::npos) << one.out;
  EXPECT_NE(one.out.find("x of rtn)"), std::string::npos) << one.out;
  const auto nf4 = run_qtool({"inspect", "nf4.npz", "--json"}, dir.path().string());
  EXPECT_EQ(json::parse(nf4.out)["meta"]["element"], "nf4");

  const auto table = run_qtool(
      {"inspect", "rtn.npz", "gptq.npz", "nf4.npz", "--reference", "w.npy", "--acts", "x.npy", "--json"},
      dir.path().string());
  ASSERT_EQ(table.exit_code, 0) << table.err;
  const json rows = json::parse(table.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["method"], "rtn");
  EXPECT_EQ(rows[1]["method"], "gptq");
  EXPECT_TRUE(rows[2]["method"].is_null());
  EXPECT_EQ(rows[2]["format"], "nf4 g32");
  // GPTQ trades weight error for output error: its outputs on the calibration data are closer.
  EXPECT_LT(rows[1]["output_error"]["mse"].get<double>(), rows[0]["output_error"]["mse"].get<double>());
  EXPECT_GT(rows[1]["output_error"]["sqnr_db"].get<double>(),
            rows[0]["output_error"]["sqnr_db"].get<double>());
  // The output MSE is the plain mean over rows and outputs of (x W^T - x What^T)^2.
  const auto x = io::read_npy(dir.file("x.npy")).to_vector<float>();
  const auto w = io::read_npy(dir.file("w.npy")).to_vector<float>();
  const auto q = dequantize_to_float(io::read_quantized(dir.file("rtn.npz")));
  double sum = 0;
  for (int r = 0; r < 500; ++r)
    for (int o = 0; o < 32; ++o) {
      double d = 0;
      for (int c = 0; c < 64; ++c) d += static_cast<double>(x[r * 64 + c]) * (w[o * 64 + c] - q[o * 64 + c]);
      sum += d * d;
    }
  EXPECT_NEAR(rows[0]["output_error"]["mse"].get<double>(), sum / (500.0 * 32), 1e-6 * sum / (500.0 * 32));

  const auto text =
      run_qtool({"inspect", "rtn.npz", "gptq.npz", "--reference", "w.npy"}, dir.path().string());
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("| gptq.npz | gptq | int3 g32 |"), std::string::npos) << text.out;
  // Misuse: no reference, a reference of another shape.
  EXPECT_EQ(run_qtool({"inspect", "rtn.npz", "gptq.npz"}, dir.path().string()).exit_code, 2);
  const auto other =
      run_qtool({"inspect", "rtn.npz", "--reference", "x.npy", "--acts", "x.npy"}, dir.path().string());
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("differs from the reference"), std::string::npos) << other.err;
}

}  // namespace
}  // namespace qk::cli_test
