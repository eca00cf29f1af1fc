// qtool on whole .npz checkpoints (files/checkpoint_file.hpp): every floating member of rank >= 2
// quantized (include/exclude patterns), the rest copied; ARCHIVE.npz:KEY for one member; inspect and
// dequantize on the result; numpy reads it without quantkit.
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

class CliCheckpoint : public Cli {
 protected:
  void SetUp() override {
    io::NpzWriter w;
    const std::vector<float> fc1 = weights(16, 64), conv = weights(8, 27), bias(16, 0.5f);
    const std::vector<std::int64_t> steps{7};
    w.add<float>("fc1.weight", {16, 64}, fc1);
    w.add<float>("fc1.bias", {16}, bias);
    w.add<float>("conv.weight", {8, 3, 3, 3}, conv);
    w.add<std::int64_t>("steps", {}, steps);
    w.add<float>("head.weight", {16, 64}, fc1);
    w.write(path("model.npz").string());
  }
};

TEST_F(CliCheckpoint, QuantizesFloatMatricesAndCopiesTheRest) {
  const json j = json::parse(ok({"quantize", "model.npz", "-o", "m.q.npz", "--bits", "4", "--group-size", "32",
                                 "--exclude", "conv.*", "--json"})
                                 .out);
  EXPECT_EQ(j["kind"], "checkpoint");
  std::map<std::string, json> members;
  for (const json& m : j["members"]) members[m["name"]] = m;
  EXPECT_TRUE(members["fc1.weight"]["quantized"]);
  EXPECT_TRUE(members["head.weight"]["quantized"]);
  EXPECT_EQ(members["fc1.bias"]["reason"], "rank 1");
  EXPECT_EQ(members["steps"]["reason"], "int64");
  EXPECT_EQ(members["conv.weight"]["reason"], "excluded by 'conv.*'");
  EXPECT_DOUBLE_EQ(j["bits_per_weight"].get<double>(), 5.0);

  // Each quantized member equals quantizing that member alone (ARCHIVE.npz:KEY).
  ok({"quantize", "model.npz:fc1.weight", "-o", "one.npz", "--bits", "4", "--group-size", "32"});
  const io::QuantizedFile one = io::read_quantized(path("one.npz").string());
  const io::QuantizedFile member = read_checkpoint_tensor(path("m.q.npz").string(), "fc1.weight");
  EXPECT_EQ(member.params.scale, one.params.scale);
  EXPECT_EQ(io::unpack_codes(member), io::unpack_codes(one));

  // Back to a plain checkpoint: same members, the copied ones unchanged.
  ok({"dequantize", "m.q.npz", "-o", "back.npz"});
  const auto back = io::read_npz(path("back.npz").string());
  EXPECT_EQ(back.size(), 5u);
  EXPECT_EQ(back.at("fc1.weight").to_vector<float>(), dequantize_to_float(one));
  EXPECT_EQ(back.at("conv.weight").to_vector<float>(), weights(8, 27));
  EXPECT_EQ(back.at("steps").to_vector<std::int64_t>(), std::vector<std::int64_t>{7});

  const ProcessResult inspect = ok({"inspect", "m.q.npz", "--reference", "model.npz"});
  EXPECT_THAT(inspect.out, HasSubstr("quantized checkpoint, 2 quantized and 3 copied member(s)"));
  EXPECT_THAT(inspect.out, HasSubstr("| fc1.weight | (16, 64) | int4 g32 | 5.00 |"));
}

TEST_F(CliCheckpoint, IncludeSelectsAndErrorsNameTheMember) {
  const json j = json::parse(ok({"quantize", "model.npz", "-o", "m.q.npz", "--include", "head.*", "--json"}).out);
  for (const json& m : j["members"]) EXPECT_EQ(m["quantized"], m["name"] == "head.weight") << m.dump();
  // A member that cannot be quantized (a NaN) fails the run, naming the archive and the member.
  {
    io::NpzWriter w;
    std::vector<float> values = weights(4, 64);
    values[5] = std::nanf("");
    w.add<float>("ok.weight", {4, 64}, weights(4, 64));
    w.add<float>("bad.weight", {4, 64}, values);
    w.write(path("nan.npz").string());
  }
  const ProcessResult r = qtool({"quantize", "nan.npz", "-o", "bad.npz"});
  expect_error_line(r, "nan.npz:bad.weight", "exclude the member");
  EXPECT_FALSE(fs::exists(path("bad.npz")));
  // Usage: patterns only for a checkpoint, fake-quant takes one tensor.
  write_weights();
  EXPECT_EQ(qtool({"quantize", "w.npy", "-o", "q.npz", "--include", "x"}).exit_code, 2);
  EXPECT_EQ(qtool({"fake-quant", "model.npz", "-o", "f.npy"}).exit_code, 2);
  ok({"fake-quant", "model.npz:fc1.weight", "-o", "f.npy"});
}

// numpy alone reads the result: KEY/q, KEY/scale, KEY/meta and the index member.
TEST_F(CliCheckpoint, NumpyReadsIt) {
  const std::string python = numpy_python();
  if (python.empty()) GTEST_SKIP() << "no python3 that imports numpy";
  ok({"quantize", "model.npz", "-o", "m.q.npz", "--exclude", "conv.*"});
  ok({"dequantize", "m.q.npz", "-o", "back.npz"});
  const std::string script = R"(
import json, numpy as np
z = np.load("m.q.npz", allow_pickle=False)
index = json.loads(str(z["quantkit_checkpoint"][()]))
assert index["format"] == "quantkit.qcheckpoint/1", index
assert index["quantized"] == ["fc1.weight", "head.weight"], index
q, s = z["fc1.weight/q"].astype(np.int32), z["fc1.weight/scale"]
w = (q * s).astype(np.float32)   # int8 per channel, symmetric: no zero_point member
assert "fc1.weight/zero_point" not in z.files
assert np.array_equal(w, np.load("back.npz")["fc1.weight"])
assert np.array_equal(z["steps"], np.array(7))
)";
  write("check.py", script);
  const ProcessResult r = run_process({python, "check.py"}, folder_.path().string());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// A member whose rows hold no whole group (conv.weight [8, 3, 3, 3]: rows of 3, flattened 27) is quantized
// per output channel, and the report says so; the others keep their groups.
TEST_F(CliCheckpoint, AMemberWithoutWholeGroupsFallsBackToChannels) {
  const json j = json::parse(
      ok({"quantize", "model.npz", "-o", "m.q.npz", "--bits", "4", "--group-size", "32", "--json"}).out);
  std::map<std::string, json> members;
  for (const json& m : j["members"]) members[m["name"]] = m;
  EXPECT_TRUE(members["conv.weight"]["quantized"]);
  EXPECT_THAT(members["conv.weight"]["note"].get<std::string>(), HasSubstr("per channel: group size 32"));
  EXPECT_FALSE(members["fc1.weight"].contains("note"));
  const io::QuantizedFile conv = read_checkpoint_tensor(path("m.q.npz").string(), "conv.weight");
  EXPECT_EQ(conv.meta.spec.granularity, Granularity::kPerChannel);
  EXPECT_EQ(conv.params.scale.size(), 8u);
  EXPECT_EQ(conv.meta.spec.bits, 4);
  const io::QuantizedFile fc1 = read_checkpoint_tensor(path("m.q.npz").string(), "fc1.weight");
  EXPECT_EQ(fc1.meta.spec.group_size, 32);
  EXPECT_THAT(ok({"quantize", "model.npz", "-o", "t.q.npz", "--bits", "4", "--group-size", "32"}).out,
              HasSubstr("(per channel: group size 32"));
}

// A quantized checkpoint whose index or members were tampered with: inspect and dequantize fail with one
// line naming the file, exit 1, and write nothing; never a crash.
TEST_F(CliCheckpoint, TamperedCheckpointsFailCleanly) {
  ok({"quantize", "model.npz", "-o", "m.q.npz", "--bits", "4", "--group-size", "32", "--exclude", "conv.*"});
  const auto members = io::read_npz(path("m.q.npz").string());
  // The archive again, with `replace` (member -> its new .npy bytes, empty = drop the member).
  const auto tampered = [&](const std::string& name, const std::map<std::string, std::string>& replace) {
    io::NpzWriter w;
    for (const auto& [member, a] : members) {
      const auto it = replace.find(member);
      if (it == replace.end() && a.dtype() == io::DType::kUnicode) {
        w.add_encoded(member, io::encode_npy_string(a.as_string()));
      } else if (it == replace.end()) {
        w.add(member, a.dtype(), a.shape(), a.raw());
      } else if (!it->second.empty()) {
        w.add_encoded(member, io::encode_npy_string(it->second));
      }
    }
    for (const auto& [member, text] : replace)
      if (!members.count(member) && !text.empty()) w.add_encoded(member, io::encode_npy_string(text));
    w.write(path(name).string());
  };
  const std::string index = kCheckpointIndexMember;
  const json good = json::parse(members.at(index).as_string());
  json ghost = good, wrong_type = good, both = good;
  ghost["quantized"].push_back("ghost.weight");
  wrong_type["quantized"] = json::array({5});
  both["copied"].push_back("fc1.weight");
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> cases = {
      {"not_json.npz", {{index, "{not json"}}},
      {"ghost.npz", {{index, ghost.dump()}}},
      {"wrong_type.npz", {{index, wrong_type.dump()}}},
      {"listed_twice.npz", {{index, both.dump()}}},
      {"no_codes.npz", {{"fc1.weight/q", ""}}},
      {"bad_meta.npz", {{"fc1.weight/meta", "{\"format\": \"quantkit.qtensor/3\"}"}}},
      {"meta_not_json.npz", {{"fc1.weight/meta", "]"}}},
  };
  for (const auto& [name, replace] : cases) {
    tampered(name, replace);
    for (const std::vector<std::string>& args : {std::vector<std::string>{"inspect", name},
                                                 std::vector<std::string>{"dequantize", name, "-o", "out.npz"}}) {
      const ProcessResult r = qtool(args);
      EXPECT_EQ(r.exit_code, 1) << name << " " << args[0] << ": " << r.out << r.err;
      EXPECT_THAT(r.err, HasSubstr(name)) << args[0];
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      EXPECT_FALSE(fs::exists(path("out.npz"))) << name;
    }
  }
}

}  // namespace
}  // namespace qk::cli_test
