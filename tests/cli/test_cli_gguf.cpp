// qtool on GGUF files (io/gguf.hpp): inspect lists the metadata and every tensor (shape outermost first,
// ggml type, bits per weight, bytes), as text and --json; a malformed file fails with one line naming it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli/cli_fixture.hpp"
#include "quantkit/quantkit.hpp"

namespace qk::cli_test {
namespace {

using nlohmann::json;
using testing::HasSubstr;

class CliGguf : public Cli {
 protected:
  void SetUp() override {
    std::vector<std::byte> f32(16 * 64 * 4), q8(16 * 2 * 34), norm(64 * 4);
    io::GgufWriter w(path("model.gguf").string(),
                     {{"general.architecture", io::GgufValue::of_string("llama")},
                      {"general.file_type", io::GgufValue::of_u32(7)}},
                     {{"blk.0.attn_q.weight", {64, 16}, io::kGgmlF32},
                      {"blk.0.ffn_up.weight", {64, 16}, 8},
                      {"output_norm.weight", {64}, io::kGgmlF32}});
    w.write_data(f32);
    w.write_data(q8);
    w.write_data(norm);
    w.commit();
  }
};

TEST_F(CliGguf, InspectListsMetadataAndTensors) {
  const ProcessResult text = ok({"inspect", "model.gguf"});
  EXPECT_THAT(text.out, HasSubstr("model.gguf: GGUF v3, 2 metadata entries, 3 tensor(s)"));
  EXPECT_THAT(text.out, HasSubstr("general.architecture = \"llama\""));
  EXPECT_THAT(text.out, HasSubstr("| blk.0.ffn_up.weight | (16, 64) | q8_0 | 8.50 | 1088 |"));
  const json j = json::parse(ok({"inspect", "model.gguf", "--json"}).out);
  EXPECT_EQ(j["kind"], "gguf");
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["metadata"]["general.file_type"], "7");
  ASSERT_EQ(j["tensors"].size(), 3u);
  EXPECT_EQ(j["tensors"][0]["shape"], json::array({16, 64}));
  EXPECT_EQ(j["tensors"][1]["type"], "q8_0");
}

TEST_F(CliGguf, MalformedFilesFailWithOneLine) {
  write("v1.gguf", std::string("GGUF\x01\0\0\0", 8) + std::string(16, '\0'));
  expect_clean_failure({"inspect", "v1.gguf"}, "", "v1.gguf", "version 1 is not supported");
  std::string bytes = read_file(path("model.gguf"));
  write("cut.gguf", bytes.substr(0, bytes.size() - 100));
  expect_clean_failure({"inspect", "cut.gguf"}, "", "cut.gguf", "runs past the end of the file");
  const json j = json::parse(qtool({"inspect", "cut.gguf", "--json"}).out);
  EXPECT_EQ(j["exit_code"], 1);
}

// An F32 model of random weights: a [16, 256] matrix (rows of one super-block), a [4, 96] matrix (rows
// of three 32-blocks, no whole super-block), a [4, 20] matrix (no whole block) and a norm [256].
class CliGgufQuantize : public Cli {
 protected:
  void SetUp() override {
    big_ = random_values(16 * 256, 1);
    odd_ = random_values(4 * 96, 2);
    tiny_ = random_values(4 * 20, 3);
    norm_ = random_values(256, 4);
    io::GgufWriter w(path("model.gguf").string(),
                     {{"general.architecture", io::GgufValue::of_string("llama")},
                      {"llama.block_count", io::GgufValue::of_u32(1)},
                      {"general.file_type", io::GgufValue::of_u32(0)}},
                     {{"blk.0.ffn_up.weight", {256, 16}, io::kGgmlF32},
                      {"blk.0.attn_k.weight", {96, 4}, io::kGgmlF32},
                      {"tiny.weight", {20, 4}, io::kGgmlF32},
                      {"output_norm.weight", {256}, io::kGgmlF32}});
    for (const auto* v : {&big_, &odd_, &tiny_, &norm_}) w.write_data(std::as_bytes(std::span(*v)));
    w.commit();
  }
  static std::vector<float> random_values(std::size_t n, std::uint32_t seed) {
    std::vector<float> v(n);
    std::uint32_t s = seed * 2654435761u + 1;
    for (float& x : v) {
      s ^= s << 13;
      s ^= s >> 17;
      s ^= s << 5;
      x = (static_cast<float>(s % 20001) / 10000.0f - 1.0f) * 0.05f;
    }
    v[7] = 0.4f;  // an outlier
    return v;
  }
  // The tensor's values as quantkit's ggml dequantizer reads them.
  static std::vector<float> values(const io::GgufTensor& t) {
    const auto type = static_cast<ggml::Type>(t.type);
    const std::int64_t n = t.ne[0], rows = t.numel() / n, row = ggml::row_bytes(type, n);
    std::vector<float> out(static_cast<std::size_t>(t.numel()));
    for (std::int64_t r = 0; r < rows; ++r)
      ggml::dequantize_row(type, t.data.data() + r * row, n, out.data() + r * n);
    return out;
  }
  std::vector<float> big_, odd_, tiny_, norm_;
};

// Every type qtool writes: each tensor's bytes are ggml's reference quantizer's for its rows (quantkit's
// bit-exact port, core/ggml_blocks.hpp), the error is within the type's bound, the norm stays F32 and
// the metadata is carried over with the file type set.
TEST_F(CliGgufQuantize, EveryTypeIsGgmlsQuantizerRowByRow) {
  struct Want {
    std::string type;
    double max_relative_rmse;  // RMSE / RMS of the weights on these N(0, 1)-like values
  };
  const std::vector<Want> types = {{"q8_0", 0.01}, {"q5_1", 0.06}, {"q5_0", 0.06}, {"q4_1", 0.12},
                                   {"q4_0", 0.12}, {"q6_K", 0.03}, {"q5_K", 0.06}, {"q4_K", 0.12},
                                   {"q3_K", 0.25}, {"q2_K", 0.45}, {"f16", 0.001}, {"bf16", 0.01},
                                   {"f32", 0.0}};
  for (const Want& want : types) {
    SCOPED_TRACE(want.type);
    const std::string out = "m." + want.type + ".gguf";
    const json j = json::parse(ok({"quantize", "model.gguf", "-o", out, "--type", want.type, "--json"}).out);
    EXPECT_EQ(j["kind"], "gguf");
    const io::GgufFile f = io::GgufFile::open(path(out).string());
    const ggml::Type type = *ggml::type_from_name(want.type);
    ASSERT_EQ(f.tensors().size(), 4u);
    const io::GgufTensor& big = f.tensors()[0];
    EXPECT_EQ(big.type, static_cast<std::uint32_t>(type));
    std::vector<std::byte> expected(static_cast<std::size_t>(16 * ggml::row_bytes(type, 256)));
    for (int r = 0; r < 16; ++r)
      ggml::quantize_row(type, big_.data() + r * 256, 256, expected.data() + r * ggml::row_bytes(type, 256));
    EXPECT_TRUE(std::equal(big.data.begin(), big.data.end(), expected.begin(), expected.end()));
    const std::vector<float> back = values(big);
    double se = 0, ss = 0;
    for (std::size_t i = 0; i < back.size(); ++i) {
      se += (back[i] - big_[i]) * (back[i] - big_[i]);
      ss += big_[i] * big_[i];
    }
    EXPECT_LE(std::sqrt(se / ss), want.max_relative_rmse);
    EXPECT_EQ(f.tensors()[3].type, io::kGgmlF32);  // the norm
    EXPECT_EQ(values(f.tensors()[3]), norm_);
    // Metadata: in order, unchanged, file type and quantization version set.
    EXPECT_EQ(f.metadata()[0].first, "general.architecture");
    EXPECT_EQ(f.find("general.architecture")->as_string("a"), "llama");
    EXPECT_EQ(f.find("llama.block_count")->as_uint("b"), 1u);
    EXPECT_EQ(f.find("general.file_type")->as_uint("f"), llama_file_type(type));
    EXPECT_EQ(f.find("general.quantization_version")->as_uint("q"), 2u);
  }
}

TEST_F(CliGgufQuantize, RowsWithoutWholeBlocksFallBackAndPatternsChoose) {
  const json j = json::parse(ok({"quantize", "model.gguf", "-o", "m.gguf", "--type", "q4_0", "--tensor-type",
                                 "blk.*.attn_k.*=q8_0", "--json"})
                                 .out);
  std::map<std::string, json> t;
  for (const json& x : j["tensors"]) t[x["name"]] = x;
  EXPECT_EQ(t["blk.0.ffn_up.weight"]["type"], "q4_0");
  EXPECT_EQ(t["blk.0.attn_k.weight"]["type"], "q8_0");
  EXPECT_THAT(t["blk.0.attn_k.weight"]["note"].get<std::string>(), HasSubstr("pattern blk.*.attn_k.*=q8_0"));
  EXPECT_EQ(t["tiny.weight"]["type"], "f16");  // rows of 20: no block of 32
  EXPECT_THAT(t["tiny.weight"]["note"].get<std::string>(), HasSubstr("rows of 20 hold no whole q4_0 block"));
  EXPECT_EQ(t["output_norm.weight"]["type"], "f32");
  // A K-quant falls back as llama.cpp's does: rows of 96 hold no super-block of 256, Q4_K -> Q5_0.
  const json k = json::parse(ok({"quantize", "model.gguf", "-o", "k.gguf", "--type", "q4_K", "--json"}).out);
  EXPECT_EQ(k["tensors"][0]["type"], "q4_K");
  EXPECT_EQ(k["tensors"][1]["type"], "q5_0");
  EXPECT_THAT(k["tensors"][1]["note"].get<std::string>(), HasSubstr("no whole q4_K block of 256: q5_0"));
  EXPECT_EQ(k["tensors"][2]["type"], "f16");
  // Already quantized: dequantized first, and said so.
  const json again = json::parse(ok({"quantize", "m.gguf", "-o", "m8.gguf", "--type", "q8_0", "--json"}).out);
  EXPECT_TRUE(again["dequantized_input"]);
  const io::GgufFile q4 = io::GgufFile::open(path("m.gguf").string());
  const io::GgufFile q8 = io::GgufFile::open(path("m8.gguf").string());
  const std::vector<float> q4_values = values(q4.tensors()[0]);
  std::vector<std::byte> expected(static_cast<std::size_t>(16 * 272));
  for (int r = 0; r < 16; ++r)
    ggml::quantize_row(ggml::Type::kQ8_0, q4_values.data() + r * 256, 256, expected.data() + r * 272);
  EXPECT_TRUE(
      std::equal(q8.tensors()[0].data.begin(), q8.tensors()[0].data.end(), expected.begin(), expected.end()));
}

TEST_F(CliGgufQuantize, SafetensorsBecomeGgufWithShapesInGgmlOrder) {
  io::SafetensorsWriter w;
  const std::vector<float> values8 = random_values(8 * 64, 9);
  w.add("fc.weight", io::StDType::kF32, {8, 64}, std::as_bytes(std::span(values8)));
  w.add("fc.bias", io::StDType::kF32, {8}, std::as_bytes(std::span(values8).first(8)));
  w.write(path("m.safetensors").string());
  const json j = json::parse(ok({"quantize", "m.safetensors", "-o", "m.gguf", "--type", "f32", "--meta",
                                 "general.architecture=test", "--json"})
                                 .out);
  EXPECT_EQ(j["tensors"].size(), 2u);
  const io::GgufFile f = io::GgufFile::open(path("m.gguf").string());
  EXPECT_EQ(f.find("general.architecture")->as_string("a"), "test");
  const io::GgufTensor* fc = nullptr;
  for (const auto& t : f.tensors())
    if (t.name == "fc.weight") fc = &t;
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->ne, (std::vector<std::int64_t>{64, 8}));  // innermost first
  EXPECT_EQ(values(*fc), values8);
  // Integer tensors are refused, naming the tensor; nothing is written.
  io::SafetensorsWriter ints;
  const std::vector<std::int64_t> steps{1, 2};
  ints.add("steps", io::StDType::kI64, {2}, std::as_bytes(std::span(steps)));
  ints.write(path("ints.safetensors").string());
  expect_clean_failure({"quantize", "ints.safetensors", "-o", "i.gguf"}, "i.gguf", "ints.safetensors:steps",
                       "not a floating type");
}

TEST_F(CliGgufQuantize, BadInputAndUsage) {
  std::string bytes = read_file(path("model.gguf"));
  write("cut.gguf", bytes.substr(0, bytes.size() / 2));
  expect_clean_failure({"quantize", "cut.gguf", "-o", "out.gguf", "--type", "q4_0"}, "out.gguf", "cut.gguf",
                       "runs past the end of the file");
  EXPECT_EQ(qtool({"quantize", "model.gguf", "-o", "o.gguf", "--type", "q9_9"}).exit_code, 2);
  // A type quantkit reads but cannot make is refused, and the list offered holds only types it can make.
  const auto q8_k = qtool({"quantize", "model.gguf", "-o", "o.gguf", "--type", "q8_K"});
  EXPECT_EQ(q8_k.exit_code, 2);
  EXPECT_THAT(
      q8_k.err,
      HasSubstr("choose q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K, f16, bf16 or f32"))
      << q8_k.err;
  EXPECT_EQ(qtool({"quantize", "model.gguf", "-o", "o.gguf", "--bits", "4"}).exit_code, 2);
  EXPECT_EQ(qtool({"quantize", "model.gguf", "-o", "o.gguf", "--tensor-type", "nopattern"}).exit_code, 2);
  write_weights();
  EXPECT_EQ(qtool({"quantize", "w.npy", "-o", "o.npz", "--type", "q4_0"}).exit_code, 2);
  EXPECT_EQ(qtool({"quantize", "w.npy", "-o", "o.gguf"}).exit_code, 2);
  EXPECT_FALSE(fs::exists(path("o.gguf")));
}

// ggml's reader refuses arrays of arrays: a key holding one is left out of the output, and said so.
TEST_F(CliGgufQuantize, NestedArraysInTheInputAreLeftOutAndReported) {
  io::GgufValue inner;
  inner.type = io::GgufType::kArray;
  inner.element = io::GgufType::kU8;
  inner.raw = {std::byte{1}, std::byte{2}};
  io::GgufValue nested;
  nested.type = io::GgufType::kArray;
  nested.element = io::GgufType::kArray;
  nested.arrays = {inner, inner};
  const std::vector<float> w = random_values(2 * 32, 5);
  io::GgufWriter writer(path("nested.gguf").string(),
                        {{"general.architecture", io::GgufValue::of_string("llama")}, {"odd.nested", nested}},
                        {{"w", {32, 2}, io::kGgmlF32}});
  writer.write_data(std::as_bytes(std::span(w)));
  writer.commit();
  const json j = json::parse(ok({"quantize", "nested.gguf", "-o", "n.gguf", "--type", "q8_0", "--json"}).out);
  EXPECT_EQ(j["dropped_metadata"], json::array({"odd.nested"}));
  const io::GgufFile f = io::GgufFile::open(path("n.gguf").string());
  EXPECT_EQ(f.find("odd.nested"), nullptr);
  EXPECT_EQ(f.find("general.architecture")->as_string("a"), "llama");
  EXPECT_THAT(ok({"quantize", "nested.gguf", "-o", "n2.gguf"}).out,
              HasSubstr("metadata odd.nested left out: an array of arrays, which ggml cannot read"));
}

// --target-bpw / --target-bytes: a type per tensor from the measured errors within the budget; inspect
// --reference measures the written file the same way.
TEST_F(CliGgufQuantize, TargetsChooseTypesAndInspectMeasuresTheResult) {
  const json j =
      json::parse(ok({"quantize", "model.gguf", "-o", "b.gguf", "--target-bpw", "6", "--json"}).out);
  EXPECT_EQ(j["budget"]["kind"], "bits_per_weight");
  EXPECT_LE(j["bits_per_weight"].get<double>(), 6.0);
  EXPECT_EQ(j["tensors"][0]["candidate_errors"].size(), 11u);  // rows of 256: every candidate
  EXPECT_EQ(j["tensors"][1]["candidate_errors"].size(), 6u);   // rows of 96: no K-quant
  EXPECT_FALSE(j["tensors"][1]["candidate_errors"].contains("q4_K"));
  EXPECT_EQ(j["tensors"][3]["type"], "f32");  // the norm
  const json c = json::parse(ok({"inspect", "b.gguf", "--reference", "model.gguf", "--json"}).out);
  ASSERT_EQ(c["tensors"].size(), 4u);
  for (int i : {0, 1}) {
    EXPECT_EQ(c["tensors"][i]["type"], j["tensors"][i]["type"]);
    EXPECT_NEAR(c["tensors"][i]["sqnr_db"].get<double>(), j["tensors"][i]["sqnr_db"].get<double>(), 1e-6);
  }
  EXPECT_TRUE(c["tensors"][3]["sqnr_db"].is_null());  // exact: +inf
  const std::string text = ok({"inspect", "b.gguf", "--reference", "model.gguf"}).out;
  EXPECT_THAT(text,
              HasSubstr("| tensor | shape | type | bits/weight | relative RMSE | SQNR dB | max abs error |"));
  ok({"quantize", "model.gguf", "-o", "c.gguf", "--target-bytes", "6000", "--candidate-types",
      "q4_0,q8_0,f16"});
  EXPECT_LE(fs::file_size(path("c.gguf")), 6000u);
  // Activations as importance: the named tensor is quantized with them.
  const std::vector<float> acts = random_values(32 * 256, 11);
  io::NpzWriter npz;
  npz.add("blk.0.ffn_up.weight", io::DType::kFloat32, {32, 256}, std::as_bytes(std::span(acts)));
  npz.write(path("acts.npz").string());
  const json w = json::parse(
      ok({"quantize", "model.gguf", "-o", "w.gguf", "--type", "q4_K", "--importance", "acts.npz", "--json"})
          .out);
  EXPECT_TRUE(w["tensors"][0]["weighted"]);
  // The bytes are ggml's weighted quantizer's with the activations' per-column mean square.
  std::vector<float> importance(256);
  for (int c = 0; c < 256; ++c) {
    double sum = 0;  // in double, as read_importance sums
    for (int r = 0; r < 32; ++r) sum += static_cast<double>(acts[r * 256 + c]) * acts[r * 256 + c];
    importance[c] = static_cast<float>(sum / 32);
  }
  std::vector<std::byte> expected(static_cast<std::size_t>(16 * ggml::row_bytes(ggml::Type::kQ4_K, 256)));
  for (int r = 0; r < 16; ++r)
    ggml::quantize_row(ggml::Type::kQ4_K, big_.data() + r * 256, 256,
                       expected.data() + r * ggml::row_bytes(ggml::Type::kQ4_K, 256), importance.data());
  const io::GgufFile wf = io::GgufFile::open(path("w.gguf").string());
  const auto& wd = wf.tensors()[0].data;
  EXPECT_TRUE(std::equal(wd.begin(), wd.end(), expected.begin(), expected.end()));
  EXPECT_FALSE(w["tensors"][1]["weighted"]);
  EXPECT_THAT(w["tensors"][1]["note"].get<std::string>(), HasSubstr("no importance"));
}

TEST_F(CliGgufQuantize, TargetUsageAndUnreachableBudgets) {
  EXPECT_EQ(
      qtool({"quantize", "model.gguf", "-o", "o.gguf", "--target-bpw", "5", "--target-bytes", "9"}).exit_code,
      2);
  EXPECT_EQ(qtool({"quantize", "model.gguf", "-o", "o.gguf", "--candidate-types", "q4_0"}).exit_code, 2);
  EXPECT_EQ(
      qtool({"quantize", "model.gguf", "-o", "o.gguf", "--target-bpw", "5", "--type", "q4_0"}).exit_code, 2);
  EXPECT_EQ(
      qtool({"quantize", "model.gguf", "-o", "o.gguf", "--target-bpw", "5", "--candidate-types", "q4_0,q9"})
          .exit_code,
      2);
  EXPECT_EQ(qtool({"quantize", "model.gguf", "-o", "o.gguf", "--target-bpw", "-1"}).exit_code, 2);
  expect_clean_failure({"quantize", "model.gguf", "-o", "o.gguf", "--target-bpw", "1"}, "o.gguf",
                       "budget: 1 bits/weight", "is below the smallest these candidates reach");
  write_weights();
  EXPECT_EQ(qtool({"quantize", "w.npy", "-o", "o.npz", "--target-bpw", "4"}).exit_code, 2);
}

}  // namespace
}  // namespace qk::cli_test
