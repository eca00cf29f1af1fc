// qtool calibrate (methods, merge, validate), quantize --calib, and the target presets, run as a child
// process on .npz batches written here.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/cli_test_util.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"

namespace qk::cli_test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Activation-like batches: "relu" (rectified Gaussian, [rows, 16]) and "attn" (Laplace, [rows, 32]).
// shift moves relu's distribution up, scale widens both.
void write_batch(const std::string& path, std::uint64_t seed, std::int64_t rows, float shift = 0.0f,
                 float scale = 1.0f) {
  std::mt19937_64 g(seed);
  auto uniform = [&] { return (static_cast<double>(g() >> 11) + 0.5) * 0x1.0p-53; };
  auto normal = [&] {
    return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform());
  };
  std::vector<float> relu(static_cast<std::size_t>(rows * 16)), attn(static_cast<std::size_t>(rows * 32));
  for (float& v : relu) v = shift + scale * static_cast<float>(std::max(0.0, normal()));
  for (float& v : attn) {
    const double u = uniform() - 0.5;
    v = scale * static_cast<float>(u < 0 ? std::log(1.0 + 2.0 * u) : -std::log(1.0 - 2.0 * u));
  }
  io::NpzWriter w;
  w.add<float>("relu", {rows, 16}, relu);
  w.add<float>("attn", {rows, 32}, attn);
  w.write(path);
}

json read_json(const std::string& path) { return json::parse(read_file(path)); }

class CliCalibrate : public testing::Test {
 protected:
  std::string p(const std::string& name) const { return folder_.file(name); }
  ProcessResult qtool(const std::vector<std::string>& args) const {
    return run_qtool(args, folder_.path().string());
  }
  void ok(const std::vector<std::string>& args) const {
    const ProcessResult r = qtool(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // Exit 1 with one "qtool: error:" line naming `phrase`, and nothing written or changed.
  void fails(const std::vector<std::string>& args, const std::string& phrase) const {
    const auto before = snapshot(folder_.path());
    const ProcessResult r = qtool(args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("qtool: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(phrase), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(snapshot(folder_.path()), before);
  }
  void write_batches(int n, std::int64_t rows = 512) const {
    for (int b = 0; b < n; ++b) write_batch(p("b" + std::to_string(b) + ".npz"), 100 + b, rows);
  }
  TempFolder folder_;
};

TEST_F(CliCalibrate, WritesEveryFieldPerTensor) {
  write_batches(3);
  ok({"calibrate", "b0.npz", "b1.npz", "b2.npz", "-o", "calib.json", "--method", "percentile", "--percentile",
      "99.9", "--affine", "--unsigned"});
  const json j = read_json(p("calib.json"));
  EXPECT_EQ(j.at("format"), "quantkit-calibration");
  for (const char* name : {"relu", "attn"}) {
    const json& t = j.at("tensors").at(name);
    EXPECT_EQ(t.at("method"), "percentile");
    EXPECT_EQ(t.at("percentile"), 99.9);
    EXPECT_EQ(t.at("batches"), 3);
    EXPECT_EQ(t.at("count"), std::string(name) == "relu" ? 3 * 512 * 16 : 3 * 512 * 32);
    EXPECT_EQ(t.at("spec").at("scheme"), "affine");
    EXPECT_EQ(t.at("spec").at("signed"), false);
    for (const char* key : {"min", "max", "clip_min", "clip_max", "scale", "zero_point", "bin_width"})
      EXPECT_EQ(t.at(key).size(), 1u) << key;
    EXPECT_LE(t.at("clip_max")[0].get<float>(), t.at("max")[0].get<float>());
    EXPECT_GT(t.at("clipped_fraction").get<double>(), 0.0);
    EXPECT_LT(t.at("clipped_fraction").get<double>(), 0.01);
    EXPECT_TRUE(t.contains("state"));
  }
  // The per-tensor table on stdout, and JSON without the state with --json.
  const ProcessResult table = qtool({"calibrate", "b0.npz", "-o", "c2.json"});
  EXPECT_NE(table.out.find("relu: (512, 16) minmax"), std::string::npos) << table.out;
  const ProcessResult js = qtool({"calibrate", "b0.npz", "-o", "c3.json", "--json"});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  EXPECT_FALSE(json::parse(js.out).at("tensors").at("relu").contains("state"));
}

TEST_F(CliCalibrate, EveryMethodAndPerChannel) {
  write_batches(2);
  for (const char* m : {"minmax", "moving-average", "percentile", "entropy", "mse", "histogram"}) {
    ok({"calibrate", "b0.npz", "b1.npz", "-o", "c.json", "--method", m});
    EXPECT_EQ(read_json(p("c.json")).at("tensors").at("attn").at("method"), m);
  }
  ok({"calibrate", "b0.npz", "b1.npz", "-o", "c.json", "--method", "mse", "--axis", "-1", "--bits", "4"});
  const json t = read_json(p("c.json")).at("tensors").at("attn");
  EXPECT_EQ(t.at("scale").size(), 32u);
  EXPECT_EQ(t.at("spec").at("quant_max"), 7);
  // A single member selected with ARCHIVE:KEY.
  ok({"calibrate", "b0.npz:relu", "-o", "one.json"});
  EXPECT_EQ(read_json(p("one.json")).at("tensors").size(), 1u);
}

TEST_F(CliCalibrate, MergedShardsEqualOneRun) {
  write_batches(4);
  for (const char* m : {"minmax", "percentile", "entropy", "mse"}) {
    ok({"calibrate", "b0.npz", "b1.npz", "b2.npz", "b3.npz", "-o", "all.json", "--method", m});
    ok({"calibrate", "b0.npz", "b1.npz", "-o", "a.json", "--method", m});
    ok({"calibrate", "b2.npz", "b3.npz", "-o", "b.json", "--method", m});
    ok({"calibrate", "--merge", "a.json", "b.json", "-o", "merged.json"});
    const json all = read_json(p("all.json")).at("tensors");
    const json merged = read_json(p("merged.json")).at("tensors");
    for (const char* name : {"relu", "attn"}) {
      SCOPED_TRACE(std::string(m) + " " + name);
      for (const char* key :
           {"min", "max", "clip_min", "clip_max", "scale", "zero_point", "count", "batches"})
        EXPECT_EQ(all.at(name).at(key), merged.at(name).at(key)) << key;
    }
  }
  ok({"calibrate", "b0.npz", "-o", "ma.json", "--method", "moving-average"});
  fails({"calibrate", "--merge", "ma.json", "ma.json", "-o", "x.json"}, "cannot be merged");
  ok({"calibrate", "b0.npz", "-o", "hist.json", "--method", "histogram"});
  fails({"calibrate", "--merge", "hist.json", "hist.json", "-o", "x.json"}, "cannot be merged");
  ok({"calibrate", "b0.npz", "-o", "four.json", "--bits", "4"});
  fails({"calibrate", "--merge", "a.json", "four.json", "-o", "x.json"}, "different settings");
}

// Batches of one tensor dumped as separate .npy files: NAME=FILE.npy makes them one tensor, the same
// result as the .npz members of that name.
TEST_F(CliCalibrate, NamedNpyBatchesAreOneTensor) {
  write_batches(3);
  for (int b = 0; b < 3; ++b) {
    const io::NpyArray relu = io::read_npz_member(p("b" + std::to_string(b) + ".npz"), "relu");
    const std::vector<float> v = relu.to_vector<float>();
    io::write_npy<float>(p("act_" + std::to_string(b) + ".npy"),
                         TensorView<const float>(v.data(), relu.shape()));
  }
  ok({"calibrate", "relu=act_0.npy", "relu=act_1.npy", "relu=act_2.npy", "-o", "named.json", "--method",
      "percentile"});
  ok({"calibrate", "b0.npz:relu", "b1.npz:relu", "b2.npz:relu", "-o", "members.json", "--method",
      "percentile"});
  const json named = read_json(p("named.json")).at("tensors");
  const json members = read_json(p("members.json")).at("tensors");
  ASSERT_EQ(named.size(), 1u);
  ASSERT_TRUE(named.contains("relu"));
  EXPECT_EQ(named.at("relu").at("batches"), 3);
  for (const char* key : {"min", "max", "clip_min", "clip_max", "scale", "zero_point", "count", "batches"})
    EXPECT_EQ(named.at("relu").at(key), members.at("relu").at(key)) << key;
  // Without names each file is its own tensor.
  ok({"calibrate", "act_0.npy", "act_1.npy", "-o", "stems.json"});
  EXPECT_EQ(read_json(p("stems.json")).at("tensors").size(), 2u);
}

TEST_F(CliCalibrate, ValidationFlagsAShiftAndPassesHeldOutData) {
  write_batches(3, 4096);
  write_batch(p("heldout.npz"), 900, 4096);
  write_batch(p("shifted.npz"), 901, 4096, /*shift=*/1.0f, /*scale=*/1.6f);
  ok({"calibrate", "b0.npz", "b1.npz", "b2.npz", "-o", "calib.json", "--method", "percentile", "--percentile",
      "99.9"});

  const ProcessResult same = qtool({"calibrate", "--validate", "calib.json", "heldout.npz", "--strict"});
  EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
  EXPECT_NE(same.out.find("all tensors within the threshold"), std::string::npos) << same.out;

  const ProcessResult shifted = qtool({"calibrate", "--validate", "calib.json", "shifted.npz"});
  EXPECT_EQ(shifted.exit_code, 0) << shifted.err;  // a report, not a failure...
  EXPECT_NE(shifted.out.find("FLAGGED"), std::string::npos) << shifted.out;
  const ProcessResult strict =
      qtool({"calibrate", "--validate", "calib.json", "shifted.npz", "--strict", "--json"});
  EXPECT_EQ(strict.exit_code, 3) << strict.err;  // ...unless --strict
  const json report = json::parse(strict.out);
  EXPECT_TRUE(report.at("flagged").get<bool>());
  for (const json& t : report.at("tensors")) {
    EXPECT_TRUE(t.at("flagged").get<bool>()) << t;
    EXPECT_GT(t.at("range_mismatch").get<double>(), 0.2);
    EXPECT_GT(t.at("clipped_fraction").get<double>(), 0.001);
    EXPECT_GT(t.at("sqnr_db").get<double>(), 0.0);
  }
  // A looser threshold passes the shifted data.
  EXPECT_EQ(qtool({"calibrate", "--validate", "calib.json", "shifted.npz", "--strict", "--max-mismatch", "5"})
                .exit_code,
            0);
}

TEST_F(CliCalibrate, QuantizeAppliesTheStoredParameters) {
  write_batches(1);
  ok({"calibrate", "b0.npz", "-o", "calib.json", "--method", "mse", "--affine", "--unsigned"});
  // A tensor to quantize with the calibration of "attn".
  const std::vector<float> x{-3.0f, -0.5f, 0.0f, 0.25f, 2.0f, 40.0f};
  write_file(p("act.npy"), npy_bytes(npy_dict("<f4", "(6,)"), bytes_of(x)));
  ok({"quantize", "act.npy", "-o", "q.npz", "--calib", "calib.json", "--tensor", "attn"});
  const json t = read_json(p("calib.json")).at("tensors").at("attn");
  const auto scale = io::read_npz_member(p("q.npz"), "scale").to_vector<float>();
  const auto zp = io::read_npz_member(p("q.npz"), "zero_point").to_vector<std::int64_t>();
  ASSERT_EQ(scale.size(), 1u);
  EXPECT_EQ(scale[0], t.at("scale")[0].get<float>());
  EXPECT_EQ(zp[0], t.at("zero_point")[0].get<std::int64_t>());
  const auto q = io::read_npz_member(p("q.npz"), "q").to_vector<std::uint8_t>();
  EXPECT_EQ(q.back(), 255);  // 40 lies beyond the calibrated range and saturates

  fails({"quantize", "act.npy", "-o", "q2.npz", "--calib", "calib.json"}, "no tensor 'act'");
  const ProcessResult mixed = qtool(
      {"quantize", "act.npy", "-o", "q2.npz", "--calib", "calib.json", "--tensor", "attn", "--bits", "4"});
  EXPECT_EQ(mixed.exit_code, 2) << mixed.err;
}

TEST_F(CliCalibrate, PresetsAndExplain) {
  const ProcessResult x86 = qtool({"quantize", "--preset", "x86", "--explain"});
  ASSERT_EQ(x86.exit_code, 0) << x86.err;
  EXPECT_NE(x86.out.find("codes [0, 127] (reduce_range), dynamic"), std::string::npos) << x86.out;
  EXPECT_NE(x86.out.find("weights (a rank-2 array): 8-bit signed symmetric per-channel (axis 0)"),
            std::string::npos);
  const ProcessResult hex = qtool({"quantize", "--preset", "hexagon", "--per-tensor", "--explain"});
  EXPECT_NE(hex.out.find("explicit flags override: --per-tensor"), std::string::npos) << hex.out;
  EXPECT_NE(hex.out.find("8-bit unsigned affine per-tensor"), std::string::npos) << hex.out;

  write_batches(1);
  ok({"calibrate", "b0.npz", "-o", "edge.json", "--preset", "edgetpu"});
  json spec = read_json(p("edge.json")).at("tensors").at("relu").at("spec");
  EXPECT_EQ(spec.at("signed"), true);
  EXPECT_EQ(spec.at("scheme"), "affine");
  EXPECT_EQ(spec.at("granularity"), "per_tensor");
  ok({"calibrate", "b0.npz", "-o", "ane.json", "--preset", "hexagon", "--symmetric", "--signed"});
  spec = read_json(p("ane.json")).at("tensors").at("relu").at("spec");
  EXPECT_EQ(spec.at("scheme"), "symmetric");
  EXPECT_EQ(spec.at("signed"), true);
  const ProcessResult dyn = qtool({"calibrate", "b0.npz", "-o", "x86.json", "--preset", "x86"});
  EXPECT_NE(dyn.out.find("serves validation only"), std::string::npos) << dyn.out;
  EXPECT_EQ(read_json(p("x86.json")).at("tensors").at("relu").at("spec").at("quant_max"), 127);
}

TEST_F(CliCalibrate, BadInputFailsWithoutWritingAnything) {
  write_batches(1);
  const std::vector<float> nan{1.0f, NAN, 2.0f};
  write_file(p("nan.npy"), npy_bytes(npy_dict("<f4", "(3,)"), bytes_of(nan)));
  write_file(p("empty.npy"), npy_bytes(npy_dict("<f4", "(0, 4)"), ""));
  write_file(p("ints.npy"), npy_bytes(npy_dict("<i4", "(2,)"), bytes_of(std::vector<std::int32_t>{1, 2})));
  io::NpzWriter bad;
  bad.add<float>("relu", {3, 5}, std::vector<float>(15, 1.0f));
  bad.write(p("badshape.npz"));
  fails({"calibrate", "nan.npy", "-o", "calib.json"}, "nan.npy: observer input: 1 non-finite value(s)");
  fails({"calibrate", "empty.npy", "-o", "calib.json"}, "has no values");
  fails({"calibrate", "b0.npz", "badshape.npz", "-o", "calib.json"}, "badshape.npz:relu: batch shape (3, 5)");
  fails({"calibrate", "ints.npy", "-o", "calib.json"}, "is not a float type");
  fails({"calibrate", "missing.npz", "-o", "calib.json"}, "missing.npz");
  // An existing calib.json survives a failed run.
  ok({"calibrate", "b0.npz", "-o", "calib.json"});
  fails({"calibrate", "b0.npz", "nan.npy", "-o", "calib.json"}, "non-finite");
  io::NpzWriter nan_relu;
  nan_relu.add<float>("relu", {1, 16}, std::vector<float>(16, NAN));
  nan_relu.write(p("nanrelu.npz"));
  fails({"calibrate", "--validate", "calib.json", "nanrelu.npz"},
        "nanrelu.npz:relu: observer input: 16 non-finite");
  write_file(p("broken.json"),
             "{\"format\": \"quantkit-calibration\", \"version\": 1, \"tensors\": {\"x\": {}}}");
  fails({"calibrate", "--merge", "broken.json", "calib.json", "-o", "m.json"}, "broken.json: tensor 'x'");
  fails({"calibrate", "b0.npz", "-o", "b0.npz"}, "b0.npz");

  for (const std::vector<std::string>& usage :
       std::vector<std::vector<std::string>>{{"calibrate", "-o", "c.json"},
                                             {"calibrate", "b0.npz"},
                                             {"calibrate", "b0.npz", "-o", "c.json", "--method", "kl"},
                                             {"calibrate", "b0.npz", "-o", "c.json", "--preset", "tpu9"},
                                             {"calibrate", "b0.npz", "--merge", "calib.json", "-o", "c.json"},
                                             {"calibrate", "--validate", "calib.json"}}) {
    const ProcessResult r = qtool(usage);
    EXPECT_EQ(r.exit_code, 2) << usage.back() << ": " << r.err;
  }
}

}  // namespace
}  // namespace qk::cli_test
