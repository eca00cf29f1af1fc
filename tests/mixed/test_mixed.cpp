// Mixed precision: candidate formats, sensitivity, the selection against brute force, plan files (round
// trip and bad plans), applying a plan, and the byte-budget target on the bundled Silero VAD weights.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "quantkit/core/quantize.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/qfile.hpp"
#include "quantkit/files/manifest.hpp"
#include "quantkit/files/plan_file.hpp"
#include "quantkit/mixed/plan.hpp"
#include "quantkit/mixed/selection.hpp"
#include "quantkit/files/quantize_file.hpp"

namespace qk {
namespace {

namespace fs = std::filesystem;

TEST(MixedCandidate, ParsesAndPrintsEveryForm) {
  EXPECT_EQ(parse_candidate("4"), (CandidateFormat{Format::kInt4, 0}));
  EXPECT_EQ(parse_candidate("3g64"), (CandidateFormat{Format::kInt3, 64}));
  EXPECT_EQ(parse_candidate("16").format, Format::kFloat16);
  EXPECT_EQ(parse_candidate("fp32").format, Format::kFloat32);
  for (const char* s : {"2", "8", "4g32", "fp16", "fp32"}) EXPECT_EQ(to_string(parse_candidate(s)), s);
  for (const char* bad : {"1", "9", "", "4g", "4g0", "g32", "int4", "4.5", "fp8", "4g-2"})
    EXPECT_THROW(parse_candidate(bad), Error) << bad;
  EXPECT_EQ(parse_candidates("2,3,,3,16").size(), 3u);  // empty items skipped, duplicates dropped
  EXPECT_THROW(parse_candidates(","), Error);
}

TEST(MixedCandidate, BytesAndErrorOfEachKind) {
  std::mt19937 gen(1);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> w(16 * 64);
  for (auto& v : w) v = d(gen);
  const Shape shape = {16, 64};
  const auto f32 = apply_candidate(w, shape, parse_candidate("fp32"));
  EXPECT_EQ(f32.bytes, w.size() * 4);
  EXPECT_EQ(f32.error.mse, 0.0);
  EXPECT_EQ(apply_candidate(w, shape, parse_candidate("fp16")).bytes, w.size() * 2);
  // 4-bit per channel: packed codes plus a float32 scale per row (no zero points: symmetric), and exactly
  // rule 6 with the min/max parameters.
  const auto q4 = apply_candidate(w, shape, parse_candidate("4"));
  EXPECT_EQ(q4.bytes, w.size() / 2 + 16 * 4);
  Shape view;
  const QuantSpec spec = candidate_spec(parse_candidate("4"), shape, view);
  std::vector<float> want(w.size());
  fake_quantize<float>(TensorView<const float>(w.data(), shape),
                       choose_qparams<float>(TensorView<const float>(w.data(), shape), spec), want);
  EXPECT_EQ(q4.approx, want);
  const auto g = apply_candidate(w, shape, parse_candidate("4g32"));
  EXPECT_EQ(g.bytes, w.size() / 2 + 32 * 4);  // two groups per row
  EXPECT_LT(g.error.mse, q4.error.mse);       // finer scales, less error
  EXPECT_LT(apply_candidate(w, shape, parse_candidate("8")).error.mse, q4.error.mse);
  // A conv-like [out, in, k] layer groups over [out, in * k].
  candidate_spec(parse_candidate("4g32"), {8, 12, 8}, view);
  EXPECT_EQ(view, (Shape{8, 96}));
  EXPECT_THROW(candidate_spec(parse_candidate("4g32"), {3, 5}, view), Error);
}

TEST(MixedPins, GlobMatchingAndPinParsing) {
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("encoder.*", "encoder.0"));
  EXPECT_TRUE(glob_match("*norm*", "layers.3.post_norm.weight"));
  EXPECT_TRUE(glob_match("fc?", "fc1"));
  EXPECT_FALSE(glob_match("fc?", "fc12"));
  EXPECT_FALSE(glob_match("encoder.*", "decoder.0"));
  EXPECT_TRUE(glob_match("a*b*c", "a_x_b_y_c"));
  EXPECT_FALSE(glob_match("a*b*c", "a_x_c_y_b"));
  EXPECT_TRUE(glob_match("*x", "*abx"));  // a '*' in the name is matched like any other character
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
  const PinRule p = parse_pin("embed*=fp16");
  EXPECT_EQ(p.pattern, "embed*");
  EXPECT_EQ(p.format.format, Format::kFloat16);
  for (const char* bad : {"embed", "=8", "x=", "x=9"}) EXPECT_THROW(parse_pin(bad), Error) << bad;
}

// A random sensitivity table: option costs and errors that trade off roughly like real formats.
std::vector<LayerSensitivity> random_table(std::mt19937& gen, std::size_t layers, std::size_t options) {
  std::uniform_int_distribution<int> weights(10, 400);
  std::uniform_real_distribution<double> jitter(0.3, 3.0);
  const int bits[] = {2, 3, 4, 8, 16};
  std::vector<LayerSensitivity> table;
  for (std::size_t l = 0; l < layers; ++l) {
    LayerSensitivity s;
    s.name = "layer" + std::to_string(l);
    s.weights = static_cast<std::uint64_t>(weights(gen));
    for (std::size_t o = 0; o < options; ++o) {
      CandidateCost c;
      c.format = {bits[o] == 16 ? Format::kFloat16 : integer_format(bits[o], true), 0};
      c.bytes = s.weights * static_cast<std::uint64_t>(bits[o]) / 8 + 8;
      c.error = std::pow(4.0, -bits[o]) * static_cast<double>(s.weights) * jitter(gen);
      s.options.push_back(c);
    }
    table.push_back(std::move(s));
  }
  return table;
}

// Brute force over every assignment: the least error within a cost limit, or the least bytes within
// an error limit.
struct Best {
  double error = INFINITY;
  std::uint64_t bytes = UINT64_MAX;
};
Best brute_force(const std::vector<LayerSensitivity>& t, const Budget& b) {
  Best best;
  std::vector<std::size_t> idx(t.size(), 0);
  std::uint64_t weights = 0;
  for (const auto& l : t) weights += l.weights;
  while (true) {
    double e = 0, bit_sum = 0;
    std::uint64_t bytes = 0;
    for (std::size_t l = 0; l < t.size(); ++l) {
      e += t[l].options[idx[l]].error;
      bytes += t[l].options[idx[l]].bytes;
      bit_sum += static_cast<double>(t[l].options[idx[l]].format.nominal_bits(t[l].weights));
    }
    if (b.kind == BudgetKind::kMaxError) {
      if (e <= b.value && bytes < best.bytes) best = {e, bytes};
    } else {
      const bool fits = b.kind == BudgetKind::kBytes ? static_cast<double>(bytes) <= b.value
                                                     : bit_sum / static_cast<double>(weights) <= b.value;
      if (fits && e < best.error) best = {e, bytes};
    }
    std::size_t l = 0;
    while (l < t.size() && ++idx[l] == t[l].options.size()) idx[l++] = 0;
    if (l == t.size()) break;
  }
  return best;
}

TEST(MixedSelection, ExactOptimumEqualsBruteForce) {
  std::mt19937 gen(static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed()));
  SCOPED_TRACE("seed " + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  for (int trial = 0; trial < 60; ++trial) {
    const auto t = random_table(gen, 2 + trial % 5, 2 + trial % 4);
    std::uint64_t min_bytes = 0, max_bytes = 0;
    for (const auto& l : t) {
      min_bytes += l.options.front().bytes;
      max_bytes += l.options.back().bytes;
    }
    for (const double frac : {0.0, 0.2, 0.5, 0.9, 1.0}) {
      const Budget b{BudgetKind::kBytes,
                     static_cast<double>(min_bytes) + frac * static_cast<double>(max_bytes - min_bytes)};
      const Selection s = select_formats(t, b);
      EXPECT_DOUBLE_EQ(s.error, brute_force(t, b).error) << "trial " << trial;
      EXPECT_LE(static_cast<double>(s.bytes), b.value);
      EXPECT_EQ(s.suboptimality_bound, 0.0);
      const Budget bits{BudgetKind::kAverageBits, 2.0 + frac * 3.0};
      if (brute_force(t, bits).error < INFINITY) {
        const Selection sb = select_formats(t, bits);
        EXPECT_DOUBLE_EQ(sb.error, brute_force(t, bits).error);
        EXPECT_LE(sb.average_bits, bits.value + 1e-12);
      }
      const Budget err{BudgetKind::kMaxError, s.error * 1.5};
      EXPECT_EQ(select_formats(t, err).bytes, brute_force(t, err).bytes);
    }
  }
}

TEST(MixedSelection, ThinnedFrontierStaysWithinItsBound) {
  std::mt19937 gen(11);
  const auto t = random_table(gen, 7, 5);
  std::uint64_t min_bytes = 0;
  for (const auto& l : t) min_bytes += l.options.front().bytes;
  SelectionOptions thin;
  thin.max_frontier = 40;
  thin.epsilon = 0.05;
  for (const double extra : {50.0, 200.0, 600.0}) {
    const Budget b{BudgetKind::kBytes, static_cast<double>(min_bytes) + extra};
    const Selection exact = select_formats(t, b);
    const Selection approx = select_formats(t, b, thin);
    EXPECT_GT(approx.suboptimality_bound, 0.0);
    // Against the optimum found by brute force over all 5^7 assignments (not the library's exact mode):
    // the thinned plan is never better than it, and within the bound it reports.
    const Best optimum = brute_force(t, b);
    EXPECT_DOUBLE_EQ(exact.error, optimum.error);
    EXPECT_GE(approx.error, optimum.error * (1 - 1e-12));
    EXPECT_LE(approx.error, optimum.error * (1 + approx.suboptimality_bound) + 1e-12);
    EXPECT_LE(static_cast<double>(approx.bytes), b.value);
    // The bound itself: thinning at ratio 1 + epsilon / layers on each of the 7 layers, doubled per extra
    // pass, stays below (1 + epsilon / 7)^7 - 1 times 2^passes; a frontier of 40 needs at most a few.
    EXPECT_LE(approx.suboptimality_bound, std::pow(1 + 0.05 / 7, 7) * 16 - 1) << "extra " << extra;
  }
  // With a cap the frontier never reaches, nothing is thinned: exact, and a bound of 0.
  SelectionOptions roomy;
  roomy.max_frontier = 1 << 20;
  roomy.epsilon = 0.05;
  const Budget mid{BudgetKind::kBytes, static_cast<double>(min_bytes) + 200.0};
  EXPECT_EQ(select_formats(t, mid, roomy).suboptimality_bound, 0.0);
  EXPECT_DOUBLE_EQ(select_formats(t, mid, roomy).error, brute_force(t, mid).error);
  // Caps from far below the unthinned frontier (about 110 points here) to above it: every plan is within
  // its bound of the brute-force optimum, never better than it, and the bound grows as the cap tightens.
  // At a cap of 100 each layer's frontier is thinned at most once, at ratio 1 + epsilon / 7, so the bound
  // is at most (1 + epsilon / 7)^7 - 1 (about epsilon), not just "some number the plan reports".
  const Best optimum = brute_force(t, mid);
  double looser_bound = 0;
  for (const std::size_t cap : {std::size_t{120}, std::size_t{100}, std::size_t{80}, std::size_t{60},
                                std::size_t{40}, std::size_t{20}}) {
    SelectionOptions capped;
    capped.max_frontier = cap;
    capped.epsilon = 0.05;
    const Selection s = select_formats(t, mid, capped);
    EXPECT_GE(s.error, optimum.error * (1 - 1e-12)) << "cap " << cap;
    EXPECT_LE(s.error, optimum.error * (1 + s.suboptimality_bound) + 1e-12) << "cap " << cap;
    EXPECT_GE(s.suboptimality_bound, looser_bound) << "cap " << cap;
    looser_bound = s.suboptimality_bound;
    if (cap == 120) EXPECT_EQ(s.suboptimality_bound, 0.0);
    if (cap == 100) {
      EXPECT_GT(s.suboptimality_bound, 0.0);
      EXPECT_LE(s.suboptimality_bound, std::pow(1 + 0.05 / 7, 7) - 1);
    }
  }
  // A cap far below what one thinning pass leaves still holds (the ratio grows), and the least-error plan
  // stays reachable, so the tightest reachable error threshold still has a plan.
  const auto big = random_table(gen, 40, 5);
  SelectionOptions tiny;
  tiny.max_frontier = 3;
  double least = 0;
  for (const auto& l : big) least += l.options.back().error;
  const Selection tight = select_formats(big, {BudgetKind::kMaxError, least}, tiny);
  EXPECT_DOUBLE_EQ(tight.error, least);
  EXPECT_GT(tight.suboptimality_bound, 0.0);
  const auto curve = tradeoff_curve(big, 1000, tiny);
  EXPECT_LE(curve.size(), 3u);
}

TEST(MixedSelection, InfeasibleBudgetsAndPinsAndTheCurve) {
  std::mt19937 gen(5);
  const auto t = random_table(gen, 3, 4);
  try {
    select_formats(t, {BudgetKind::kBytes, 1});
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("smallest plan needs"), std::string::npos) << e.what();
  }
  EXPECT_THROW(select_formats(t, {BudgetKind::kMaxError, -1}), Error);
  EXPECT_THROW(select_formats(t, {BudgetKind::kAverageBits, NAN}), Error);
  // The trade-off curve is Pareto: bits up, error down, both ends are the uniform extremes.
  const auto curve = tradeoff_curve(t, 1000);
  ASSERT_GE(curve.size(), 2u);
  for (std::size_t i = 1; i < curve.size(); ++i) {
    EXPECT_GT(curve[i].average_bits, curve[i - 1].average_bits);
    EXPECT_LT(curve[i].error, curve[i - 1].error);
  }
  EXPECT_DOUBLE_EQ(curve.front().average_bits, 2.0);
  EXPECT_DOUBLE_EQ(curve.back().average_bits, 8.0);
  EXPECT_LE(tradeoff_curve(t, 5).size(), 5u);

  // Pins: a pinned layer is measured in its pin's format only and keeps it under any budget.
  std::vector<float> w(8 * 32);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i));
  const std::vector<LayerInput> layers = {{"embed", {8, 32}, w}, {"fc", {8, 32}, w}};
  const auto cands = parse_candidates("2,4,8");
  const std::vector<PinRule> pins = {parse_pin("emb*=fp16")};
  const auto sens = measure_sensitivity(layers, cands, pins);
  ASSERT_EQ(sens[0].options.size(), 1u);
  EXPECT_EQ(sens[0].pinned_by, "emb*");
  EXPECT_EQ(sens[1].options.size(), 3u);
  const Selection s = select_formats(sens, {BudgetKind::kBytes, 1e9});
  EXPECT_EQ(sens[0].options[s.choice[0]].format.format, Format::kFloat16);
  EXPECT_EQ(sens[1].options[s.choice[1]].format.bits(), 8);
  try {
    measure_sensitivity(layers, cands, std::vector<PinRule>{parse_pin("emb*=fp16"), parse_pin("ffn*=4")});
    ADD_FAILURE() << "a pin matching nothing was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pin 'ffn*' matches no layer"), std::string::npos) << e.what();
  }
  // The task metric replaces the weight error (negative values count as 0).
  const auto by_metric = measure_sensitivity(
      layers, cands, {}, [](std::size_t layer, const CandidateFormat& f, std::span<const float>) {
        return layer == 0 ? -1.0 : 10.0 - f.bits();
      });
  EXPECT_EQ(by_metric[0].options[0].error, 0.0);
  EXPECT_EQ(by_metric[1].options[1].error, 6.0);
  // A group size that fits nothing leaves that candidate out; none left is an error.
  EXPECT_EQ(measure_sensitivity(layers, parse_candidates("4g24,4"), {})[0].options.size(), 1u);
  EXPECT_THROW(measure_sensitivity(layers, parse_candidates("4g24"), {}), Error);
}

// Plan files ----------------------------------------------------------------------------------------

struct PlanFixture : ::testing::Test {
  fs::path dir;
  std::vector<std::vector<float>> values;
  std::vector<ManifestLayer> files;

  void SetUp() override {
    dir = fs::temp_directory_path() / ("qk-plan-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::vector<std::pair<std::string, Shape>> layers = {
        {"a", {16, 64}}, {"b", {8, 4, 8}}, {"c", {10}}};
    for (const auto& [name, shape] : layers) {
      std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
      for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::cos(0.37f * static_cast<float>(i)) * (1 + i % 7);
      const std::string file = (dir / (name + ".npy")).string();
      io::write_npy<float>(file, TensorView<const float>(v.data(), shape));
      values.push_back(std::move(v));
      files.push_back({name, file, shape});
    }
  }
  void TearDown() override { fs::remove_all(dir); }

  Plan make() {
    std::vector<LayerInput> in;
    std::vector<std::string> paths;
    for (std::size_t i = 0; i < files.size(); ++i) {
      in.push_back({files[i].name, files[i].shape, values[i]});
      paths.push_back(files[i].file);
    }
    const auto sens = measure_sensitivity(in, parse_candidates("2,4g32,8,16"), {});
    const Budget b{BudgetKind::kAverageBits, 5.0};
    return make_plan(sens, paths, select_formats(sens, b), b, "weight-sse");
  }
  std::string write_json(const std::string& name, const nlohmann::json& j) {
    const std::string path = (dir / name).string();
    std::ofstream(path) << j.dump();
    return path;
  }
};

TEST_F(PlanFixture, RoundTripKeepsEveryField) {
  const Plan plan = make();
  const std::string path = (dir / "plan.json").string();
  write_plan(plan, path);
  const Plan back = read_plan(path);
  ASSERT_EQ(back.layers.size(), plan.layers.size());
  EXPECT_EQ(back.objective, plan.objective);
  EXPECT_EQ(back.budget, plan.budget);
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    EXPECT_EQ(back.layers[i].name, plan.layers[i].name);
    EXPECT_EQ(fs::weakly_canonical(back.layers[i].file), fs::weakly_canonical(plan.layers[i].file));
    EXPECT_EQ(back.layers[i].shape, plan.layers[i].shape);
    EXPECT_EQ(back.layers[i].format, plan.layers[i].format);
    EXPECT_EQ(back.layers[i].bytes, plan.layers[i].bytes);
    EXPECT_DOUBLE_EQ(back.layers[i].mse, plan.layers[i].mse);
  }
  EXPECT_EQ(back.total_bytes(), plan.total_bytes());
  EXPECT_DOUBLE_EQ(back.average_bits(), plan.average_bits());
  // Files beside the plan are stored relative to it, so the folder can move.
  const auto j = nlohmann::json::parse(std::ifstream(path));
  EXPECT_EQ(j["layers"][0]["file"], "a.npy");
  EXPECT_EQ(j["format"], kMixedPlanFormat);
  EXPECT_TRUE(j["totals"].contains("average_bits"));
}

TEST_F(PlanFixture, BadPlansAreRejectedNamingTheProblem) {
  write_plan(make(), (dir / "good.json").string());
  const nlohmann::json good = nlohmann::json::parse(std::ifstream(dir / "good.json"));
  auto expect_error = [&](const nlohmann::json& j, const std::string& fragment) {
    const std::string path = write_json("bad.json", j);
    try {
      read_plan(path);
      ADD_FAILURE() << "accepted a plan that should fail with: " << fragment;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    }
  };
  nlohmann::json j = good;
  j["format"] = "something/else";
  expect_error(j, "not a quantkit mixed-precision plan");
  j = good;
  j["layers"] = nlohmann::json::array();
  expect_error(j, "no layers");
  j = good;
  j["layers"][0]["format"] = "9";
  expect_error(j, "layer a: bad format '9'");
  j = good;
  j["layers"][1]["name"] = "a";
  expect_error(j, "listed twice");
  j = good;
  j["layers"][0]["shape"] = {16, 65};
  expect_error(j, "weights do not match the shape");
  j["layers"][0].erase("weights");
  expect_error(j, "has shape (16, 64), the plan says (16, 65)");
  j = good;
  j["layers"][0]["file"] = "missing.npy";
  expect_error(j, "is missing");
  j = good;
  j["layers"][0]["bits"] = 3;
  expect_error(j, "contradict");
  j = good;
  j["layers"][2]["format"] = "4g3";
  j["layers"][2]["bits"] = 4;
  expect_error(j, "layer c: group size 3");
  j = good;
  j["objective"] = "speed";
  expect_error(j, "unknown objective");
  j = good;
  j["layers"][0].erase("shape");
  expect_error(j, "malformed plan");
  std::ofstream(dir / "bad.json") << "{ not json";
  EXPECT_THROW(read_plan((dir / "bad.json").string()), Error);
  EXPECT_THROW(read_plan((dir / "absent.json").string()), Error);
}

TEST_F(PlanFixture, OutputsNeverReplaceInputsOrLeaveTheFolder) {
  Plan plan = make();
  EXPECT_THROW(write_plan(plan, files[0].file), Error);  // the plan may not replace a weight file
  plan.layers[2].format = parse_candidate("fp32");
  EXPECT_THROW(apply_plan(plan, dir.string()), Error);  // c.npy out would be c.npy in
  EXPECT_FALSE(fs::exists(dir / "a.npz")) << "written before the check";
  plan.layers[0].name = "../escaped";
  plan.layers[1].name = "a/b";
  const fs::path out = dir / "out";
  apply_plan(plan, out.string(), {(dir / "manifest.json").string()});
  EXPECT_FALSE(fs::exists(dir / "escaped.npz"));
  EXPECT_TRUE(fs::exists(out / ".._escaped.npz") || fs::exists(out / "_.._escaped.npz")) << "sanitized name";
  EXPECT_TRUE(fs::exists(out / "a_b.npz") || fs::exists(out / "a_b.npy"));
  plan.layers[1].name = "_../escaped";  // sanitizes to the same file name as layer 0
  plan.layers[0].name = "_../escaped";
  EXPECT_THROW(apply_plan(plan, (dir / "out2").string()), Error);
}

TEST_F(PlanFixture, ApplyWritesEveryLayerInItsFormat) {
  Plan plan = make();
  plan.layers[0].format = parse_candidate("4g32");
  plan.layers[1].format = parse_candidate("4g32");  // [8, 4, 8] groups over [8, 32]
  plan.layers[2].format = parse_candidate("fp16");
  const fs::path out = dir / "out";
  apply_plan(plan, out.string());
  const auto manifest = nlohmann::json::parse(std::ifstream(out / "manifest.json"));
  ASSERT_EQ(manifest["layers"].size(), 3u);
  for (std::size_t i = 0; i < 2; ++i) {
    const io::QuantizedFile q = io::read_quantized((out / (files[i].name + ".npz")).string());
    EXPECT_EQ(q.meta.spec.bits, 4);
    const std::vector<float> back = dequantize_to_float(q);
    EXPECT_EQ(back, apply_candidate(values[i], files[i].shape, plan.layers[i].format).approx)
        << files[i].name;
  }
  // Groups of 32 run along the rows [8, 32] of the [8, 4, 8] layer: consecutive elements, so the file keeps
  // the layer's shape, as `qtool quantize --group-size 32` writes it.
  EXPECT_EQ(manifest["layers"][1]["stored_shape"], (Shape{8, 4, 8}));
  EXPECT_EQ(io::read_quantized((out / (files[1].name + ".npz")).string()).meta.shape, (Shape{8, 4, 8}));
  const io::NpyArray h = io::read_npy((out / "c.npy").string());
  EXPECT_EQ(h.dtype(), io::DType::kFloat16);
  EXPECT_EQ(h.shape(), (Shape{10}));
  for (const auto& e : fs::directory_iterator(out))
    EXPECT_NE(e.path().filename().string().front(), '.') << "temporary left: " << e.path();
}

// The target on real weights: under a byte budget the plan has less total weight MSE than
// every uniform assignment that fits the same budget.
TEST(MixedSilero, ByteBudgetPlanBeatsEveryUniformPlanThatFits) {
  const auto loaded =
      load_manifest_layers(std::string(QK_SOURCE_DIR) + "/examples/data/silero_vad_v5_16k");
  std::vector<LayerInput> layers;
  for (const auto& l : loaded) layers.push_back({l.name, l.shape, l.values});
  const auto cands = parse_candidates("2,3,4,8,16");
  const auto sens = measure_sensitivity(layers, cands);
  for (const double budget : {80000.0, 110000.0, 150000.0, 200000.0, 300000.0}) {
    const Budget b{BudgetKind::kBytes, budget};
    const Selection plan = select_formats(sens, b);
    int fitting = 0;
    for (const auto& c : cands) {
      const auto u = uniform_selection(sens, c);
      ASSERT_TRUE(u.has_value());
      if (!fits_budget(*u, b)) continue;
      ++fitting;
      EXPECT_LT(plan.error, u->error) << "budget " << budget << " vs uniform " << to_string(c);
    }
    EXPECT_GT(fitting, 0) << budget;
  }
}

}  // namespace
}  // namespace qk
