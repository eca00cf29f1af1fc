// qtool on GGUF files (io/gguf.hpp): inspect lists the metadata and every tensor (shape outermost first,
// ggml type, bits per weight, bytes), as text and --json; a malformed file fails with one line naming it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace qk::cli_test
