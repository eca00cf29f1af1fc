// qtool mixed and qtool quantize --plan run as child processes on the bundled Silero VAD weights: the
// dry-run table and trade-off curve, plans under each kind of budget, pins, applying a plan, bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <utility>

#include "cli/cli_test_util.hpp"
#include "quantkit/files/quantize_file.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/qfile.hpp"

namespace qk::cli_test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string silero() { return std::string(QK_SOURCE_DIR) + "/examples/data/silero_vad_v5_16k"; }

// Summed squared error of a written layer (quantized .npz, or a float .npy) against the original weights,
// computed here from the files.
double file_error(const std::string& original, const fs::path& written) {
  const std::vector<float> w = io::read_npy(original).to_vector<float>();
  const std::vector<float> back = written.extension() == ".npz"
                                      ? dequantize_to_float(io::read_quantized(written.string()))
                                      : io::read_npy(written.string()).to_vector<float>();
  EXPECT_EQ(back.size(), w.size()) << written;
  double sum = 0;
  for (std::size_t i = 0; i < std::min(w.size(), back.size()); ++i)
    sum += (double(w[i]) - back[i]) * (double(w[i]) - back[i]);
  return sum;
}

TEST(CliMixed, DryRunPrintsEveryCandidateAndTheTradeoffCurve) {
  TempFolder dir;
  const auto r = run_qtool({"mixed", silero(), "--dry-run"}, dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* fragment : {"encoder.0", "decoder.lstm.hh", "fp16", "trade-off", "sqnr_db"})
    EXPECT_NE(r.out.find(fragment), std::string::npos) << fragment << "\n" << r.out;
  EXPECT_TRUE(snapshot(dir.path()).empty()) << "a dry run wrote something";
  const auto j =
      run_qtool({"mixed", silero(), "--dry-run", "--candidates", "2,4,8", "--json"}, dir.path().string());
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const json out = json::parse(j.out);
  ASSERT_EQ(out["layers"].size(), 7u);
  EXPECT_EQ(out["layers"][0]["candidates"].size(), 3u);
  ASSERT_GE(out["tradeoff"].size(), 2u);
  EXPECT_DOUBLE_EQ(out["tradeoff"][0]["average_bits"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(out["tradeoff"].back()["average_bits"].get<double>(), 8.0);
  EXPECT_FALSE(out.contains("plan"));
}

TEST(CliMixed, ByteBudgetPlanBeatsTheUniformPlansThatFitAndApplies) {
  TempFolder dir;
  const auto r = run_qtool(
      {"mixed", silero(), "--budget-bytes", "150000", "-o", "plan.json", "--out-dir", "q", "--json"},
      dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  const double plan_mse = out["plan"]["totals"]["mse"].get<double>();
  EXPECT_LE(out["plan"]["totals"]["bytes"].get<double>(), 150000);
  // The plan's error recomputed from the files it wrote, layer by layer.
  double plan_error = 0;
  for (const auto& l : out["plan"]["layers"]) {
    const std::string name = l["name"];
    const fs::path written = fs::exists(dir.path() / "q" / (name + ".npz"))
                                 ? dir.path() / "q" / (name + ".npz")
                                 : dir.path() / "q" / (name + ".npy");
    const double e = file_error(l["file"], written);
    EXPECT_NEAR(e, l["error"].get<double>(), 1e-6 * e + 1e-12) << name;
    plan_error += e;
    if (written.extension() == ".npz") {  // the plan's bytes are the file's payload: codes and scales
      const io::QuantizedFile q = io::read_quantized(written.string());
      const std::size_t zero_points = q.meta.zero_point_member ? q.params.zero_point.size() * 4 : 0;
      EXPECT_EQ(l["bytes"].get<std::size_t>(), q.q.raw().size() + q.params.scale.size() * 4 + zero_points)
          << name;
    }
  }
  EXPECT_NEAR(plan_mse, plan_error / out["plan"]["totals"]["weights"].get<double>(), 1e-6 * plan_mse);
  // Each uniform integer plan that fits, made here with qtool quantize (per channel, as mixed quantizes),
  // with its error recomputed from those files: the plan beats every one of them.
  int fitting = 0;
  for (const auto& u : out["uniform"]) {
    const std::string bits = u["name"];
    // Per-channel formats only: a group format that divides no row of a conv weight groups the flattened
    // layer in mixed, which quantize --group-size does not offer.
    if (!u["fits_budget"].get<bool>() || bits == "fp16" || bits.find('g') != std::string::npos) continue;
    ++fitting;
    double uniform_error = 0;
    for (const auto& l : out["plan"]["layers"]) {
      const std::string file = l["file"], name = l["name"];
      const std::string q = "u" + bits + "_" + name + ".npz";
      const auto r = run_qtool({"quantize", file, "-o", q, "--bits", bits}, dir.path().string());
      ASSERT_EQ(r.exit_code, 0) << r.err;
      uniform_error += file_error(file, dir.path() / q);
    }
    EXPECT_NEAR(uniform_error, u["error"].get<double>(), 1e-6 * uniform_error) << "uniform " << bits;
    EXPECT_LT(plan_error, uniform_error) << "uniform " << bits;
  }
  EXPECT_GE(fitting, 2);
  EXPECT_TRUE(fs::exists(dir.file("plan.json")));
  EXPECT_TRUE(fs::exists(dir.path() / "q" / "manifest.json"));
  // A per-group layer keeps its shape (groups along the flattened rows); the manifest gives both shapes.
  const json manifest = json::parse(read_file(dir.path() / "q" / "manifest.json"));
  for (const auto& l : manifest["layers"]) {
    if (l["name"] != "encoder.1") continue;
    EXPECT_EQ(l["shape"].get<Shape>(), (Shape{64, 128, 3}));
    EXPECT_EQ(l["stored_shape"].get<Shape>(), (Shape{64, 128, 3}));
    EXPECT_EQ(io::read_quantized((dir.path() / "q" / "encoder.1.npz").string()).meta.shape,
              l["stored_shape"].get<Shape>());
  }

  // quantize --plan applies the same plan elsewhere, byte for byte.
  const auto a = run_qtool({"quantize", "--plan", "plan.json", "--out-dir", "again"}, dir.path().string());
  ASSERT_EQ(a.exit_code, 0) << a.err;
  for (const auto& e : fs::directory_iterator(dir.path() / "q"))
    EXPECT_EQ(read_file(e.path()), read_file(dir.path() / "again" / e.path().filename())) << e.path();
}

TEST(CliMixed, BitsBudgetErrorThresholdAndPins) {
  TempFolder dir;
  const auto r = run_qtool({"mixed", silero(), "--budget-bits", "5", "--pin", "decoder.out=fp16", "--pin",
                            "encoder.*=8", "-o", "plan.json", "--json"},
                           dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json plan = json::parse(r.out)["plan"];
  EXPECT_LE(plan["totals"]["average_bits"].get<double>(), 5.0 + 1e-9);
  for (const auto& l : plan["layers"]) {
    const std::string name = l["name"];
    if (name == "decoder.out") EXPECT_EQ(l["format"], "fp16");
    if (name.rfind("encoder.", 0) == 0) {
      EXPECT_EQ(l["format"], "8");
      EXPECT_EQ(l["pinned_by"], "encoder.*");
    }
  }
  const auto e =
      run_qtool({"mixed", silero(), "--max-error", "1e-3", "-o", "e.json", "--json"}, dir.path().string());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_LE(json::parse(e.out)["plan"]["totals"]["mse"].get<double>(), 1e-3);
}

TEST(CliMixed, BadUsageAndBadInputFailCleanly) {
  TempFolder dir;
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {{"mixed", silero(), "-o", "p.json"}, 2, "--budget-bits"},
      {{"mixed", silero(), "--budget-bits", "4", "--budget-bytes", "9", "-o", "p.json"}, 2, "one of"},
      {{"mixed", silero(), "--budget-bits", "4"}, 2, "-o plan.json"},
      {{"mixed", silero(), "--budget-bits", "4", "--candidates", "4,9", "-o", "p.json"}, 2, "bad format '9'"},
      {{"mixed", silero(), "--budget-bits", "4", "--pin", "encoder", "-o", "p.json"}, 2, "PATTERN=FORMAT"},
      {{"mixed", silero(), "--dry-run", "-o", "p.json"}, 2, "writes nothing"},
      {{"mixed", silero(), "--budget-bytes", "100", "-o", "p.json"}, 1, "smallest plan needs"},
      {{"mixed", "missing.json", "--budget-bits", "4", "-o", "p.json"}, 1, "missing.json"},
      {{"quantize", "--plan", "absent.json", "--out-dir", "d"}, 1, "absent.json"},
      {{"quantize", "--plan", "absent.json"}, 2, "--out-dir"},
      {{"mixed", silero(), "--budget-bits", "-1", "-o", "p.json"}, 2, "finite number >= 0"},
      {{"mixed", silero(), "--max-error", "nan", "-o", "p.json"}, 2, "finite number >= 0"},
      {{"mixed", silero(), "--max-error", "1e-12", "-o", "p.json"}, 1, "least reachable is"},
      {{"mixed", silero(), "--budget-bits", "4", "--pin", "nothing*=8", "-o", "p.json"},
       1,
       "matches no layer"},
      {{"mixed", silero(), "--budget-bits", "4", "-o", silero() + "/manifest.json"}, 1, "manifest.json"},
      {{"mixed", silero(), "--budget-bits", "4", "-o", "p.json", "--out-dir", silero()}, 1, "manifest.json"},
  };
  for (const Case& c : cases) {
    const auto before = snapshot(dir.path());
    const auto r = run_qtool(c.args, dir.path().string());
    EXPECT_EQ(r.exit_code, c.code) << c.args[1] << " " << r.err;
    EXPECT_NE(r.err.find(c.fragment), std::string::npos) << r.err;
    EXPECT_EQ(snapshot(dir.path()), before) << "output left behind for " << r.err;
  }
  // An --out-dir that cannot be made fails before the plan is written.
  write_file(dir.path() / "taken", "a file, not a folder");
  const auto before = snapshot(dir.path());
  const auto t = run_qtool({"mixed", silero(), "--budget-bits", "4", "-o", "p.json", "--out-dir", "taken"},
                           dir.path().string());
  EXPECT_EQ(t.exit_code, 1) << t.err;
  EXPECT_EQ(snapshot(dir.path()), before);
  // A bad plan names the plan file and the layer.
  write_file(dir.path() / "bad.json",
             R"({"format": "quantkit.mixed-plan/1", "objective": "bytes", "budget": 1,
                 "layers": [{"name": "x", "file": "nope.npy", "shape": [2], "format": "4"}]})");
  const auto r = run_qtool({"quantize", "--plan", "bad.json", "--out-dir", "d"}, dir.path().string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad.json: layer x: weight file"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "d"));
}

// A plain folder of .npy files is a folder of layers (names from the file stems); a hand-written manifest
// with a missing or mistyped field fails naming the manifest, the layer and the field.
TEST(CliMixed, FolderOfNpyAndManifestErrorsNameTheField) {
  TempFolder dir;
  fs::create_directory(dir.path() / "layers");
  for (const char* name : {"encoder.0.weight", "decoder.lstm.ih.weight"})
    fs::copy_file(fs::path(silero()) / (std::string(name) + ".npy"),
                  dir.path() / "layers" / (std::string(name) + ".npy"));
  const auto r =
      run_qtool({"mixed", "layers", "--budget-bits", "4", "-o", "plan.json", "--json"}, dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json plan = json::parse(r.out)["plan"];
  ASSERT_EQ(plan["layers"].size(), 2u);
  EXPECT_EQ(plan["layers"][0]["name"], "decoder.lstm.ih.weight");  // name order
  EXPECT_EQ(plan["layers"][1]["name"], "encoder.0.weight");

  fs::create_directory(dir.path() / "bad");
  fs::copy_file(fs::path(silero()) / "encoder.0.weight.npy", dir.path() / "bad" / "w.npy");
  struct Case {
    const char* manifest;
    const char* phrase;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"layers": [{"name": "enc", "file": "w.npy"}]})", R"(layer enc: field "shape" is missing)"},
           {R"({"layers": [{"name": "enc", "file": "w.npy", "shape": "128x129x3"}]})",
            R"(layer enc: field "shape" is "128x129x3", expected a list of dimensions)"},
           {R"({"layers": [{"file": "w.npy", "shape": [1]}]})", R"(layer 0: field "name" is missing)"},
           {R"({"layers": [{"name": "enc", "file": "w.npy", "shape": [128, 129]}]})", "layer enc: shape"},
           {R"({"weights": []})", R"(expected {"layers")"},
           {"{not json", "not valid JSON"}}) {
    write_file(dir.path() / "bad" / "manifest.json", c.manifest);
    const auto bad = run_qtool({"mixed", "bad", "--budget-bits", "4", "-o", "bad.json"}, dir.path().string());
    EXPECT_EQ(bad.exit_code, 1) << c.manifest;
    EXPECT_NE(bad.err.find(c.phrase), std::string::npos) << c.manifest << "\n" << bad.err;
    EXPECT_FALSE(fs::exists(dir.path() / "bad.json"));
  }
}

// A small LLM-shaped set of layers with input activations: q_proj [32, 64] and down_proj [64, 128] with
// outlier input channels, and ff [16, 64] without activations.
struct LlmLayers {
  TempFolder dir;
  std::vector<float> q, down, ff, xq, xd;
  LlmLayers() {
    std::mt19937 gen(7);
    std::normal_distribution<float> d(0, 1);
    const auto fill = [&](std::vector<float>& v, std::size_t n, float scale) {
      v.resize(n);
      for (auto& x : v) x = d(gen) * scale;
    };
    fill(q, 32 * 64, 0.05f);
    fill(down, 64 * 128, 0.02f);
    fill(ff, 16 * 64, 0.1f);
    fill(xq, 40 * 64, 1);
    fill(xd, 40 * 128, 1);
    for (std::size_t r = 0; r < 40; ++r) xq[r * 64 + 3] *= 25, xd[r * 128 + 100] *= 40;
    down[7 * 128 + 9] = 1.5f;
    fs::create_directory(dir.path() / "llm");
    io::write_npy((dir.path() / "llm" / "q_proj.npy").string(), TensorView<const float>(q.data(), {32, 64}));
    io::write_npy((dir.path() / "llm" / "down_proj.npy").string(),
                  TensorView<const float>(down.data(), {64, 128}));
    io::write_npy((dir.path() / "llm" / "ff.npy").string(), TensorView<const float>(ff.data(), {16, 64}));
    io::write_npy(dir.file("xq.npy"), TensorView<const float>(xq.data(), {40, 64}));
    io::write_npy(dir.file("xd.npy"), TensorView<const float>(xd.data(), {2, 20, 128}));
  }
};

// ||X (W - Wq)^T||^2 and ||X W^T||^2 from the written file, computed here.
std::pair<double, double> file_output_error(const std::vector<float>& w, const std::vector<float>& x,
                                            std::size_t in, const fs::path& written) {
  const std::vector<float> back = dequantize_to_float(io::read_quantized(written.string()));
  double err = 0, energy = 0;
  for (std::size_t r = 0; r < x.size() / in; ++r)
    for (std::size_t o = 0; o < w.size() / in; ++o) {
      double y = 0, dy = 0;
      for (std::size_t i = 0; i < in; ++i) {
        y += double(x[r * in + i]) * w[o * in + i];
        dy += double(x[r * in + i]) * (double(w[o * in + i]) - back[o * in + i]);
      }
      err += dy * dy;
      energy += y * y;
    }
  return {err, energy};
}

TEST(CliMixed, ActsJudgeLayersByTheirOutputError) {
  LlmLayers llm;
  for (const std::string measure : {"relative", "output-sse"}) {
    std::vector<std::string> args = {
        "mixed",         "llm",          "--acts", "q_proj=xq.npy",   "--acts",    "down_proj=xd.npy",
        "--budget-bits", "4.5",          "-o",     measure + ".json", "--out-dir", measure,
        "--candidates",  "2,3,4,4g32,8", "--json"};
    if (measure != "relative")
      args.insert(args.end(), {"--error", measure});  // relative: the default with acts
    const auto r = run_qtool(args, llm.dir.path().string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json plan = json::parse(r.out)["plan"];
    EXPECT_EQ(plan["error_measure"], measure);
    EXPECT_LE(plan["totals"]["average_bits"].get<double>(), 4.5 + 1e-9);
    for (const auto& l : plan["layers"]) {
      const std::string name = l["name"];
      const fs::path written = llm.dir.path() / measure / (name + ".npz");
      if (name == "ff") {  // no activations: its weight error (relative: over ||W||^2)
        EXPECT_FALSE(l.contains("output_sqnr_db"));
        double energy = 0;
        for (const float v : llm.ff) energy += double(v) * v;
        const double e = file_error(l["file"], written);
        EXPECT_NEAR(l["error"].get<double>(), measure == "relative" ? e / energy : e, 1e-6 * e / energy);
        continue;
      }
      const bool is_q = name == "q_proj";
      const auto [err, energy] =
          file_output_error(is_q ? llm.q : llm.down, is_q ? llm.xq : llm.xd, is_q ? 64 : 128, written);
      EXPECT_NEAR(l["error"].get<double>(), measure == "relative" ? err / energy : err,
                  1e-6 * l["error"].get<double>())
          << name;
      EXPECT_NEAR(l["output_sqnr_db"].get<double>(), 10 * std::log10(energy / err), 1e-4) << name;
    }
  }
  // The plan file keeps the output SQNR, and quantize --plan reads it and writes the same layers.
  const json saved = json::parse(read_file(llm.dir.path() / "relative.json"));
  for (const auto& l : saved["layers"])
    EXPECT_EQ(l.contains("output_sqnr_db"), l["name"] != "ff") << l["name"];
  const auto a =
      run_qtool({"quantize", "--plan", "relative.json", "--out-dir", "again"}, llm.dir.path().string());
  ASSERT_EQ(a.exit_code, 0) << a.err;
  for (const auto& e : fs::directory_iterator(llm.dir.path() / "relative"))
    EXPECT_EQ(read_file(e.path()), read_file(llm.dir.path() / "again" / e.path().filename())) << e.path();
  // The text report shows the output SQNR column and the measure.
  const auto t =
      run_qtool({"mixed", "llm", "--acts", "q_proj=xq.npy", "--budget-bits", "4.5", "-o", "t.json"},
                llm.dir.path().string());
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("out_sqnr"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("relative"), std::string::npos) << t.out;
}

TEST(CliMixed, BadActsNameTheLayerAndTheFile) {
  LlmLayers llm;
  io::write_npy(llm.dir.file("narrow.npy"), TensorView<const float>(llm.xq.data(), {80, 32}));
  struct Case {
    std::vector<std::string> args;
    int code;
    std::vector<std::string> fragments;
  };
  for (const Case& c :
       std::vector<Case>{{{"--acts", "q_proj=narrow.npy"},
                          1,
                          {"layer q_proj", "narrow.npy", "(80, 32)", "expected (rows, 64)"}},
                         {{"--acts", "v_proj=xq.npy"}, 1, {"xq.npy", "no layer is named v_proj"}},
                         {{"--acts", "q_proj=absent.npy"}, 1, {"absent.npy"}},
                         {{"--acts", "xq.npy"}, 2, {"LAYER=FILE"}},
                         {{"--error", "kl"}, 2, {"unknown error measure 'kl'"}}}) {
    std::vector<std::string> args = {"mixed", "llm", "--budget-bits", "4", "-o", "p.json"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const auto r = run_qtool(args, llm.dir.path().string());
    EXPECT_EQ(r.exit_code, c.code) << c.args[1] << "\n" << r.err;
    for (const auto& f : c.fragments) EXPECT_NE(r.err.find(f), std::string::npos) << f << "\n" << r.err;
    EXPECT_FALSE(fs::exists(llm.dir.path() / "p.json"));
  }
}

}  // namespace
}  // namespace qk::cli_test
