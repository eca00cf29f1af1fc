// qtool on safetensors models (files/safetensors_quant.hpp): quantize every floating tensor of rank >= 2
// into the quantized safetensors layout and copy the rest byte for byte; the codes equal those of the same
// tensor quantized as .npy; dequantize gives back a float model within half a step; sharded checkpoints
// through their index; inspect with and without a reference; numpy reads the layout with the README's
// snippet; hostile and tampered files fail with one line, exit 1 and no output.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "cli/cli_fixture.hpp"
#include "quantkit/quantkit.hpp"

namespace qk::cli_test {
namespace {

using nlohmann::json;
using testing::HasSubstr;

template <class T>
std::span<const std::byte> raw(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

std::vector<std::uint16_t> bf16_of(const std::vector<float>& v) {
  std::vector<std::uint16_t> out;
  for (const float x : v) out.push_back(float_to_bfloat16_bits(x));
  return out;
}

std::vector<std::uint16_t> f16_of(const std::vector<float>& v) {
  std::vector<std::uint16_t> out;
  for (const float x : v) out.push_back(float_to_half_bits(x));
  return out;
}

// The bytes of a file from a header text and a data section.
std::string file_of(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

class CliSafetensors : public Cli {
 protected:
  void SetUp() override {
    io::SafetensorsWriter w;
    w.add("fc1.weight", io::StDType::kF32, {16, 64}, raw(fc1_));
    w.add("fc1.bias", io::StDType::kF32, {16}, raw(bias_));
    w.add("emb.weight", io::StDType::kF16, {8, 64}, raw(f16_of(weights(8, 64))));
    w.add("head.weight", io::StDType::kBF16, {16, 64}, raw(bf16_of(fc1_)));
    w.add("steps", io::StDType::kI64, {1}, raw(steps_));
    w.set_metadata({{"format", "pt"}});
    w.write(path("model.safetensors").string());
    write("fc1.npy", npy_of("<f4", {16, 64}, fc1_));
  }
  const std::vector<float> fc1_ = weights(16, 64), bias_ = std::vector<float>(16, 0.5f);
  const std::vector<std::int64_t> steps_{7};
};

TEST_F(CliSafetensors, QuantizesFloatMatricesCopiesTheRestAndDequantizes) {
  const json j = json::parse(ok({"quantize", "model.safetensors", "-o", "m.q.safetensors", "--json"}).out);
  EXPECT_EQ(j["kind"], "safetensors");
  std::map<std::string, json> members;
  for (const json& m : j["members"]) members[m["name"]] = m;
  EXPECT_TRUE(members["fc1.weight"]["quantized"]);
  EXPECT_TRUE(members["emb.weight"]["quantized"]);
  EXPECT_TRUE(members["head.weight"]["quantized"]);
  EXPECT_EQ(members["head.weight"]["dtype"], "BF16");
  EXPECT_EQ(members["fc1.bias"]["reason"], "rank 1");
  EXPECT_EQ(members["steps"]["reason"], "I64");

  // The layout: codes under the name (I8 with the original shape at 8 bits), NAME.scale, meta in
  // __metadata__; copied tensors byte for byte; the input's metadata kept.
  const io::SafetensorsFile q = io::SafetensorsFile::open(path("m.q.safetensors").string());
  EXPECT_EQ(q.tensor("fc1.weight").dtype, io::StDType::kI8);
  EXPECT_EQ(q.tensor("fc1.weight").shape, (Shape{16, 64}));
  EXPECT_EQ(q.tensor("fc1.weight.scale").dtype, io::StDType::kF32);
  EXPECT_FALSE(q.contains("fc1.weight.zero_point"));  // symmetric: every zero point 0
  EXPECT_EQ(q.metadata().at("format"), "pt");
  EXPECT_EQ(json::parse(q.metadata().at("fc1.weight"))["bits"], 8);
  const io::StTensor& bias = q.tensor("fc1.bias");
  EXPECT_EQ(bias.dtype, io::StDType::kF32);
  EXPECT_EQ(std::memcmp(bias.data.data(), bias_.data(), bias.data.size()), 0);
  EXPECT_EQ(q.tensor("steps").dtype, io::StDType::kI64);

  // One rule, two containers: the codes and scales of `qtool quantize fc1.npy`.
  ok({"quantize", "fc1.npy", "-o", "fc1.npz"});
  const io::QuantizedFile one = io::read_quantized(path("fc1.npz").string());
  const io::QuantizedFile member = read_safetensors_tensor(q, "fc1.weight");
  EXPECT_EQ(member.params.scale, one.params.scale);
  EXPECT_EQ(io::unpack_codes(member), io::unpack_codes(one));

  // Back to floats: the same names and shapes, each quantized value within half a step, copies unchanged.
  ok({"dequantize", "m.q.safetensors", "-o", "back.safetensors"});
  const io::SafetensorsFile back = io::SafetensorsFile::open(path("back.safetensors").string());
  EXPECT_EQ(back.tensors().size(), 5u);
  EXPECT_EQ(back.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  const std::vector<float> w = io::st_to_float(back.tensor("fc1.weight"));
  ASSERT_EQ(w.size(), fc1_.size());
  for (std::size_t i = 0; i < w.size(); ++i)
    expect_within_half_step(fc1_[i], w[i], member.params.scale[i / 64], i);
  EXPECT_EQ(back.tensor("emb.weight").shape, (Shape{8, 64}));
  EXPECT_EQ(back.tensor("head.weight").dtype, io::StDType::kF32);
  EXPECT_EQ(io::st_to_float(back.tensor("fc1.bias")), bias_);
  EXPECT_EQ(back.tensor("steps").dtype, io::StDType::kI64);

  // --dtype bf16 / f16 give those dtypes for the quantized tensors only.
  ok({"dequantize", "m.q.safetensors", "-o", "back16.safetensors", "--dtype", "bf16"});
  const io::SafetensorsFile back16 = io::SafetensorsFile::open(path("back16.safetensors").string());
  EXPECT_EQ(back16.tensor("fc1.weight").dtype, io::StDType::kBF16);
  EXPECT_EQ(back16.tensor("fc1.bias").dtype, io::StDType::kF32);

  const ProcessResult inspect = ok({"inspect", "m.q.safetensors", "--reference", "model.safetensors"});
  EXPECT_THAT(inspect.out, HasSubstr("quantized safetensors, 3 quantized and 2 copied tensor(s)"));
  EXPECT_THAT(inspect.out, HasSubstr("| fc1.weight | (16, 64) | int8 per-channel | 8.50 |"));
  const json ij =
      json::parse(ok({"inspect", "m.q.safetensors", "--reference", "model.safetensors", "--json"}).out);
  EXPECT_EQ(ij["kind"], "quantized_safetensors");
  for (const json& row : ij["quantized"]) {
    EXPECT_GT(row["error"]["sqnr_db"].get<double>(), 35.0) << row.dump();
    // relative RMSE and SQNR are two views of one ratio: SQNR = -20 log10(relative RMSE).
    EXPECT_NEAR(-20 * std::log10(row["error"]["relative_rmse"].get<double>()),
                row["error"]["sqnr_db"].get<double>(), 1e-6)
        << row.dump();
    EXPECT_GT(row["error"]["max_abs_error"].get<double>(), 0.0);
  }
  EXPECT_THAT(
      inspect.out,
      HasSubstr("| tensor | shape | format | bits/weight | MSE | relative RMSE | SQNR dB | max abs error |"));
}

TEST_F(CliSafetensors, GroupsIncludeExcludeAndFourBitCodes) {
  const json j = json::parse(ok({"quantize", "model.safetensors", "-o", "m.q.safetensors", "--bits", "4",
                                 "--group-size", "32", "--exclude", "emb.*", "--json"})
                                 .out);
  EXPECT_DOUBLE_EQ(j["bits_per_weight"].get<double>(), 5.0);
  ok({"quantize", "fc1.npy", "-o", "fc1.npz", "--bits", "4", "--group-size", "32"});
  const io::SafetensorsFile q = io::SafetensorsFile::open(path("m.q.safetensors").string());
  EXPECT_EQ(q.tensor("fc1.weight").dtype, io::StDType::kU8);  // packed, two codes a byte
  EXPECT_EQ(q.tensor("fc1.weight").shape, (Shape{16 * 64 / 2}));
  EXPECT_EQ(q.tensor("emb.weight").dtype, io::StDType::kF16);  // excluded: copied
  const io::QuantizedFile one = io::read_quantized(path("fc1.npz").string());
  EXPECT_EQ(io::unpack_codes(read_safetensors_tensor(q, "fc1.weight")), io::unpack_codes(one));

  const json only = json::parse(
      ok({"quantize", "model.safetensors", "-o", "h.q.safetensors", "--include", "head.*", "--json"}).out);
  for (const json& m : only["members"]) EXPECT_EQ(m["quantized"], m["name"] == "head.weight") << m.dump();
}

// A sharded checkpoint: the index and its two shards give one quantized file; inspect lists both shards.
TEST_F(CliSafetensors, ShardedCheckpointsGoThroughTheirIndex) {
  {
    io::SafetensorsWriter a, b;
    a.add("fc1.weight", io::StDType::kF32, {16, 64}, raw(fc1_));
    a.set_metadata({{"format", "pt"}});
    b.add("fc2.weight", io::StDType::kF32, {16, 64}, raw(fc1_));
    b.add("fc2.bias", io::StDType::kF32, {16}, raw(bias_));
    a.write(path("model-00001-of-00002.safetensors").string());
    b.write(path("model-00002-of-00002.safetensors").string());
    write("model.safetensors.index.json", json{{"metadata", {{"total_size", 8256}}},
                                               {"weight_map",
                                                {{"fc1.weight", "model-00001-of-00002.safetensors"},
                                                 {"fc2.weight", "model-00002-of-00002.safetensors"},
                                                 {"fc2.bias", "model-00002-of-00002.safetensors"}}}}
                                              .dump());
  }
  const json listing = json::parse(ok({"inspect", "model.safetensors.index.json", "--json"}).out);
  EXPECT_EQ(listing["shards"], 2);
  EXPECT_EQ(listing["tensors"].size(), 3u);
  ok({"quantize", "model.safetensors.index.json", "-o", "q.safetensors"});
  const io::SafetensorsFile q = io::SafetensorsFile::open(path("q.safetensors").string());
  const CheckpointIndex index = read_safetensors_quant_index(q);
  EXPECT_EQ(index.quantized, (std::vector<std::string>{"fc1.weight", "fc2.weight"}));
  EXPECT_EQ(index.copied, (std::vector<std::string>{"fc2.bias"}));

  // An index that names a missing tensor, a file outside its folder, or leaves a shard's tensor out.
  const auto bad_index = [&](const std::string& name, const json& map) {
    write(name, json{{"weight_map", map}}.dump());
  };
  bad_index("missing.safetensors.index.json", {{"fc1.weight", "model-00001-of-00002.safetensors"},
                                               {"ghost", "model-00001-of-00002.safetensors"}});
  bad_index("escape.safetensors.index.json", {{"fc1.weight", "../model-00001-of-00002.safetensors"}});
  bad_index("partial.safetensors.index.json", {{"fc2.weight", "model-00002-of-00002.safetensors"}});
  expect_clean_failure({"quantize", "missing.safetensors.index.json", "-o", "out.safetensors"},
                       "out.safetensors", "missing.safetensors.index.json", "'ghost' is not in its shard");
  expect_clean_failure({"quantize", "escape.safetensors.index.json", "-o", "out.safetensors"},
                       "out.safetensors", "escape.safetensors.index.json", "not a file beside the index");
  expect_clean_failure({"quantize", "partial.safetensors.index.json", "-o", "out.safetensors"},
                       "out.safetensors", "model-00002-of-00002.safetensors",
                       "'fc2.bias' is not in the index");
}

// Hostile inputs: each exit 1 with one line naming the file and the problem, no output, an existing output
// untouched.
TEST_F(CliSafetensors, HostileFilesFailCleanly) {
  const std::string good_data(32, '\0');
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"truncated.safetensors",
       file_of(R"({"a":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]}})", "12345"),
       "past the data section"},
      {"lying.safetensors",
       file_of(R"({"a":{"dtype":"F32","shape":[2,4],"data_offsets":[0,16]}})", good_data), "need 32"},
      {"overlap.safetensors",
       file_of(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
               R"("b":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}})",
               good_data),
       "overlaps"},
      {"huge.safetensors", std::string("\xff\xff\xff\xff\xff\x00\x00\x00", 8) + "{}", "exceeds the limit"},
      {"count.safetensors",
       file_of(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", good_data),
       "overflows"},
      {"dtype.safetensors", file_of(R"({"a":{"dtype":"F128","shape":[2],"data_offsets":[0,32]}})", good_data),
       "unknown safetensors dtype 'F128'"},
      {"utf8.safetensors",
       file_of("{\"\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}", good_data),
       "not valid JSON"},
      {"short.safetensors", std::string("\x10\x00", 2), "shorter than the 8-byte header length"},
  };
  for (const auto& [name, bytes, phrase] : cases) {
    write(name, bytes);
    expect_clean_failure({"quantize", name, "-o", "out.safetensors"}, "out.safetensors", name, phrase);
    expect_clean_failure({"inspect", name}, "", name, phrase);
  }
}

// A quantized file whose index, meta or parameters were tampered with: inspect and dequantize fail with
// one line naming the file, exit 1, and write nothing.
TEST_F(CliSafetensors, TamperedQuantizedFilesFailCleanly) {
  ok({"quantize", "model.safetensors", "-o", "m.q.safetensors", "--bits", "4", "--group-size", "32"});
  const io::SafetensorsFile q = io::SafetensorsFile::open(path("m.q.safetensors").string());
  // The file again with `drop` left out and `metadata` entries replaced (empty: removed).
  const auto tampered = [&](const std::string& name, const std::string& drop,
                            const std::map<std::string, std::string>& metadata,
                            const std::string& retype = "") {
    io::SafetensorsWriter w;
    for (const io::StTensor& t : q.tensors()) {
      if (t.name == drop) continue;
      if (t.name == retype) {
        w.add(t.name, io::StDType::kI8, t.shape, t.data);  // same size: U8 codes declared I8, F32 -> ...
        continue;
      }
      w.add(t.name, t.dtype, t.shape, t.data);
    }
    std::map<std::string, std::string> m = q.metadata();
    for (const auto& [k, v] : metadata) {
      if (v.empty())
        m.erase(k);
      else
        m[k] = v;
    }
    w.set_metadata(m);
    w.write(path(name).string());
  };
  json index = json::parse(q.metadata().at(kSafetensorsQuantKey));
  json ghost = index, twice = index;
  ghost["quantized"].push_back("ghost.weight");
  twice["copied"].push_back("fc1.weight");
  tampered("no_index.safetensors", "", {{kSafetensorsQuantKey, "{not json"}});
  tampered("ghost.safetensors", "", {{kSafetensorsQuantKey, ghost.dump()}});
  tampered("twice.safetensors", "", {{kSafetensorsQuantKey, twice.dump()}});
  tampered("no_meta.safetensors", "", {{"fc1.weight", ""}});
  tampered("bad_meta.safetensors", "", {{"fc1.weight", R"({"format": "quantkit.qtensor/3"})"}});
  tampered("no_scale.safetensors", "fc1.weight.scale", {});
  tampered("retyped.safetensors", "", {}, "fc1.weight");
  for (const std::string name :
       {"no_index.safetensors", "ghost.safetensors", "twice.safetensors", "no_meta.safetensors",
        "bad_meta.safetensors", "no_scale.safetensors", "retyped.safetensors"}) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"inspect", name},
          std::vector<std::string>{"dequantize", name, "-o", "o.safetensors"}}) {
      const ProcessResult r = qtool(args);
      EXPECT_EQ(r.exit_code, 1) << name << " " << args[0] << ": " << r.out << r.err;
      EXPECT_THAT(r.err, HasSubstr(name)) << args[0];
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      EXPECT_FALSE(fs::exists(path("o.safetensors"))) << name;
    }
  }
}

TEST_F(CliSafetensors, UsageErrorsSayWhatToName) {
  EXPECT_EQ(qtool({"quantize", "model.safetensors", "-o", "m.q.npz"}).exit_code, 2);
  EXPECT_EQ(qtool({"fake-quant", "model.safetensors", "-o", "f.npy"}).exit_code, 2);
  ok({"quantize", "model.safetensors", "-o", "m.q.safetensors"});
  EXPECT_EQ(qtool({"dequantize", "m.q.safetensors", "-o", "back.npy"}).exit_code, 2);
  EXPECT_EQ(qtool({"dequantize", "m.q.safetensors", "-o", "back.safetensors", "--dtype", "f64"}).exit_code,
            2);
  // Quantizing a quantized file is refused (the tensors would be codes).
  expect_clean_failure({"quantize", "m.q.safetensors", "-o", "again.safetensors"}, "again.safetensors",
                       "m.q.safetensors", "already quantized");
}

// numpy alone dequantizes the layout (the snippet README shows).
// A mixed-precision plan over the model's own tensors: qtool mixed MODEL.safetensors writes layers named by
// the tensors, and quantize MODEL.safetensors --plan gives each its format (float16 layers stored as F16),
// copying what the plan leaves out.
TEST_F(CliSafetensors, PlansOverTheModelsTensorsApplyToTheModel) {
  const json m = json::parse(ok({"mixed", "model.safetensors", "--budget-bits", "10", "--candidates",
                                 "4,8,16", "--pin", "head.*=fp16", "-o", "plan.json", "--json"})
                                 .out);
  const json plan = json::parse(read_file(path("plan.json")));
  std::map<std::string, std::string> formats;
  for (const json& l : plan["layers"]) formats[l["name"]] = l["format"];
  ASSERT_EQ(formats.size(), 3u);  // fc1.weight, emb.weight, head.weight: the floating tensors of rank 2
  EXPECT_TRUE(formats.contains("fc1.weight") && formats.contains("emb.weight") &&
              formats.contains("head.weight"));
  const json q = json::parse(
      ok({"quantize", "model.safetensors", "-o", "q.safetensors", "--plan", "plan.json", "--json"}).out);
  std::map<std::string, json> members;
  for (const json& e : q["members"]) members[e["name"]] = e;
  for (const auto& [name, format] : formats) {
    SCOPED_TRACE(name + " " + format);
    if (format == "fp16") {
      EXPECT_FALSE(members[name]["quantized"]);
      EXPECT_EQ(members[name]["reason"], "plan: fp16");
    } else {
      ASSERT_TRUE(members[name]["quantized"]);
      const io::SafetensorsFile f = io::SafetensorsFile::open(path("q.safetensors").string());
      const json meta = json::parse(f.metadata().at(name));
      EXPECT_EQ(meta["bits"], std::stoi(format));
    }
  }
  EXPECT_EQ(formats["head.weight"], "fp16");
  EXPECT_EQ(members["fc1.bias"]["reason"], "not in the plan");
  // The fp16 layer is stored as F16 (it was BF16), with the values float16 holds.
  const io::SafetensorsFile qf = io::SafetensorsFile::open(path("q.safetensors").string());
  for (const io::StTensor& t : qf.tensors())
    if (t.name == "head.weight") {
      EXPECT_EQ(t.dtype, io::StDType::kF16);
      const std::vector<float> back = io::st_to_float(t);
      for (std::size_t i = 0; i < back.size(); ++i)
        EXPECT_EQ(back[i], half_bits_to_float(
                               float_to_half_bits(bfloat16_bits_to_float(float_to_bfloat16_bits(fc1_[i])))));
    }
  // A plan made for a model is refused by a model that lacks one of its tensors, and by the .npz path.
  io::SafetensorsWriter w;
  w.add("fc1.weight", io::StDType::kF32, {16, 64}, raw(fc1_));
  w.write(path("small.safetensors").string());
  expect_clean_failure({"quantize", "small.safetensors", "-o", "s.safetensors", "--plan", "plan.json"},
                       "s.safetensors", "small.safetensors", "is not a tensor of this model");
  expect_clean_failure({"quantize", "--plan", "plan.json", "--out-dir", "layers"}, "", "layer",
                       "a plan over a model is applied to the model");
  EXPECT_EQ(
      qtool({"quantize", "model.safetensors", "-o", "x.safetensors", "--plan", "plan.json", "--bits", "4"})
          .exit_code,
      2);
  EXPECT_EQ(
      qtool({"quantize", "model.safetensors", "--plan", "plan.json", "--out-dir", "d", "-o", "x.safetensors"})
          .exit_code,
      2);
  (void)m;
}

TEST_F(CliSafetensors, NumpyReadsTheLayoutWithReadmesSnippet) {
  const std::string python = numpy_python();
  if (python.empty()) GTEST_SKIP() << "no python3 that imports numpy";
  ok({"quantize", "model.safetensors", "-o", "m.q.safetensors", "--bits", "4", "--group-size", "32",
      "--affine"});
  ok({"dequantize", "m.q.safetensors", "-o", "back.safetensors"});
  const std::string script = R"(
import json, struct, numpy as np

def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header, data = json.loads(f.read(n)), f.read()
    dtypes = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I8": np.int8, "U8": np.uint8,
              "I32": np.int32, "I64": np.int64}
    meta = header.pop("__metadata__", {})
    return {k: np.frombuffer(data[t["data_offsets"][0]:t["data_offsets"][1]], dtypes[t["dtype"]]).reshape(t["shape"])
            for k, t in header.items()}, meta

def dequantize(tensors, meta, name):
    m = json.loads(meta[name])
    q, scale = tensors[name], tensors[name + ".scale"].astype(np.float32)
    if m["packing"] != "none":          # 4 bits: two codes a byte, element 2k in the low nibble
        q = np.stack([q & 15, q >> 4], axis=-1).reshape(-1)
        if m["signed"]:
            q = q.astype(np.int8) - 16 * (q >= 8)
    q = q.astype(np.int32)
    zp = tensors.get(name + ".zero_point", np.zeros(scale.shape, np.int32))
    if m["granularity"] == "per_group":
        w = (q.reshape(scale.shape + (m["group_size"],)) - zp[..., None]) * scale[..., None]
    else:
        w = (q.reshape(m["shape"]) - zp) * scale
    return w.reshape(m["shape"]).astype(np.float32)   # what qtool dequantize gives, bit for bit

tensors, meta = load_safetensors("m.q.safetensors")
back, _ = load_safetensors("back.safetensors")
index = json.loads(meta["quantkit"])
assert index["quantized"] == ["fc1.weight", "emb.weight", "head.weight"], index
for name in index["quantized"]:
    assert np.array_equal(dequantize(tensors, meta, name), back[name]), name
assert np.array_equal(tensors["steps"], [7])
)";
  write("check.py", script);
  const ProcessResult r = run_process({python, "check.py"}, folder_.path().string());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace qk::cli_test
