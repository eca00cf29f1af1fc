// qtool quantize --method as a child process: every method writes a quantized file that qtool dequantize
// reads back (input_scale undone for awq and smoothquant), and bad calibration input fails cleanly.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/cli_test_util.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/ptq/quantize_file.hpp"

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
    if (std::string(method) == "gptq" || std::string(method) == "awq")
      EXPECT_LT(j["output_error"].get<double>(), j["rtn_output_error"].get<double>()) << method;
  }
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
      {{"--method", "gptq", "--acts", "x.npy", "--affine"}, 2, "only --bits and --group-size"},
      {{"--method", "gptq", "--acts", "x.npy", "--group-size", "48"}, 1, "does not divide"},
      {{"--acts", "x.npy"}, 2, "are for --method"},
      {{"--damp", "0.1"}, 2, "are for --method"},
      {{"--method", "rtn", "--act-order"}, 2, "gptq options"},
      {{"--method", "awq", "--acts", "x.npy", "--alpha", "0.3"}, 2, "smoothquant option"},
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
  const auto r = run_qtool({"quantize", "conv.npy", "-o", "out.npz", "--method", "rtn"}, dir.path().string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("expected a linear layer's weight [out, in]"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qk::cli_test
