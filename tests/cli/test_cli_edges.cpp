// What a new user hits first: one JSON object on stdout for every outcome under --json (failures and
// usage errors too), usage errors that point to the subcommand's help, out-of-range --bits and a
// quantized output not named .npz refused as usage errors, QK_ISA typos refused, "larger" said when a file
// grows, the wrong kind of quantkit file named for what it is, the methods' default codes, and progress
// on stderr at a terminal (and nowhere else).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "cli_fixture.hpp"
#include "quantkit/io/qfile.hpp"

namespace qk::cli_test {
namespace {

using CliEdges = Cli;

// With --json, stdout holds exactly one JSON object whatever happens; the message stays on stderr.
TEST_F(CliEdges, JsonOutcomesAreOneObjectOnStdout) {
  write_weights();
  ProcessResult r = qtool({"quantize", "missing.npy", "-o", "q.npz", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  json j = json::parse(r.out);
  EXPECT_EQ(j["exit_code"], 1);
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("missing.npy"));
  EXPECT_THAT(r.err, HasSubstr("missing.npy"));
  r = qtool({"quantize", "w.npy", "-o", "q.npz", "--bits", "9", "--json"});
  EXPECT_EQ(r.exit_code, 2);
  j = json::parse(r.out);
  EXPECT_EQ(j["exit_code"], 2);
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("--bits"));
  r = qtool({"--json", "frobnicate"});  // a parse error before --json is even seen as a flag
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(json::parse(r.out)["exit_code"], 2);
  // --explain with --json: the explanation as JSON, not text.
  r = ok({"quantize", "w.npy", "--preset", "ane", "--explain", "--json"});
  j = json::parse(r.out);
  EXPECT_FALSE(j["explain"].empty());
  EXPECT_THAT(j["weights"].get<std::string>(), HasSubstr("8-bit signed symmetric per-channel"));
}

TEST_F(CliEdges, UsageErrorsPointToTheSubcommandsHelp) {
  write_weights();
  const ProcessResult r = qtool({"quantize", "w.npy", "-o", "q.npz", "--bits", "9"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("Run 'qtool quantize --help' for usage."));
  const ProcessResult none = qtool({"frobnicate"});
  EXPECT_THAT(none.err, HasSubstr("Run 'qtool --help' for usage."));
}

TEST_F(CliEdges, QuantizedOutputMustBeNpzAndNothingIsWritten) {
  write_weights();
  for (const char* name : {"q.npy", "q.bin", "q"}) {
    const ProcessResult r = qtool({"quantize", "w.npy", "-o", name});
    EXPECT_EQ(r.exit_code, 2) << name;
    EXPECT_THAT(r.err, HasSubstr("a quantized file is an .npz archive")) << name;
    EXPECT_FALSE(fs::exists(path(name))) << name;
  }
}

TEST_F(CliEdges, UnknownIsaIsAUsageErrorNamingTheChoices) {
  write_weights();
  const ProcessResult r = run_process(
      {"/usr/bin/env", "QK_ISA=avx3", QK_QTOOL, "quantize", "w.npy", "-o", "q.npz"}, folder_.path().string());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("QK_ISA=avx3"));
  EXPECT_THAT(r.err, HasSubstr("scalar, avx2 or avx512vnni"));
  EXPECT_FALSE(fs::exists(path("q.npz")));
  const ProcessResult fine =
      run_process({"/usr/bin/env", "QK_ISA=scalar", QK_QTOOL, "quantize", "w.npy", "-o", "q.npz"},
                  folder_.path().string());
  EXPECT_EQ(fine.exit_code, 0) << fine.err;
}

TEST_F(CliEdges, AFileThatGrowsIsSaidToBeLarger) {
  write("tiny.npy", npy_of("<f4", {2, 2}, std::vector<float>{1, 2, 3, 4}));
  const ProcessResult r = ok({"quantize", "tiny.npy", "-o", "tiny.npz"});
  EXPECT_THAT(r.out, HasSubstr("x larger)"));
  EXPECT_THAT(r.out, testing::Not(HasSubstr("smaller")));
  write("big.npy", npy_of("<f4", {64, 256}, weights(64, 256)));
  EXPECT_THAT(ok({"quantize", "big.npy", "-o", "big.npz", "--bits", "4"}).out, HasSubstr("x smaller)"));
}

TEST_F(CliEdges, TheWrongKindOfFileIsNamedForWhatItIs) {
  write_weights();
  ok({"embed", "--table", "w.npy", "--bits", "8", "--save", "table.npz"});
  ok({"quantize", "w.npy", "-o", "q.npz"});
  write("plan.json", R"({"format": "quantkit.mixed-plan/1", "layers": []})");
  write("calib.json", R"({"format": "quantkit-calibration", "tensors": {}})");
  struct Case {
    std::vector<std::string> args;
    const char* what;
    const char* hint;
  };
  for (const Case& c : std::vector<Case>{
           {{"inspect", "table.npz"}, "table.npz is an embedding table", "qtool embed --table"},
           {{"dequantize", "table.npz", "-o", "d.npy"}, "is an embedding table", "qtool embed --table"},
           {{"dequantize", "plan.json", "-o", "d.npy"}, "plan.json is a mixed-precision plan", "--plan"},
           {{"inspect", "calib.json"}, "calib.json is a calibration file", "--calib"},
           {{"dequantize", "w.npy", "-o", "d.npy"}, "w.npy is a .npy array", "qtool quantize"}}) {
    const ProcessResult r = qtool(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args[1];
    EXPECT_THAT(r.err, HasSubstr(c.what));
    EXPECT_THAT(r.err, HasSubstr(c.hint));
    EXPECT_FALSE(fs::exists(path("d.npy")));
  }
}

// --method without --bits / --group-size: 4-bit groups of 128 where 128 divides the inputs (what GPTQ and
// AWQ users expect), one scale per output channel where it does not; smoothquant stays W8A8.
TEST_F(CliEdges, MethodDefaultsAreFourBitGroupsOf128) {
  write("w128.npy", npy_of("<f4", {8, 256}, weights(8, 256)));
  write("x128.npy", npy_of("<f4", {32, 256}, weights(32, 256)));
  write_weights("w64.npy");  // [4, 64]
  write("x64.npy", npy_of("<f4", {32, 64}, weights(32, 64)));
  ok({"quantize", "w128.npy", "-o", "rtn.npz", "--method", "rtn"});
  io::QuantizedFile f = io::read_quantized(path("rtn.npz").string());
  EXPECT_EQ(f.meta.spec.bits, 4);
  EXPECT_EQ(f.meta.spec.granularity, Granularity::kPerGroup);
  EXPECT_EQ(f.meta.spec.group_size, 128);
  ok({"quantize", "w128.npy", "-o", "gptq.npz", "--method", "gptq", "--acts", "x128.npy"});
  f = io::read_quantized(path("gptq.npz").string());
  EXPECT_EQ(f.meta.spec.bits, 4);
  EXPECT_EQ(f.meta.spec.group_size, 128);
  ok({"quantize", "w64.npy", "-o", "awq.npz", "--method", "awq", "--acts", "x64.npy"});
  f = io::read_quantized(path("awq.npz").string());
  EXPECT_EQ(f.meta.spec.bits, 4);
  EXPECT_EQ(f.meta.spec.granularity, Granularity::kPerChannel);
  ok({"quantize", "w128.npy", "-o", "sq.npz", "--method", "smoothquant", "--acts", "x128.npy"});
  f = io::read_quantized(path("sq.npz").string());
  EXPECT_EQ(f.meta.spec.bits, 8);
  EXPECT_EQ(f.meta.spec.granularity, Granularity::kPerChannel);
  // Flags still win.
  ok({"quantize", "w128.npy", "-o", "r8.npz", "--method", "rtn", "--bits", "8", "--group-size", "64"});
  f = io::read_quantized(path("r8.npz").string());
  EXPECT_EQ(f.meta.spec.bits, 8);
  EXPECT_EQ(f.meta.spec.group_size, 64);
}

// Long work draws a progress bar on stderr when stderr is a terminal, and nothing when it is not; stdout
// is the same either way. QTOOL_PROGRESS_DELAY=0 draws from the start (the default waits a second, longer
// than these small runs take).
TEST_F(CliEdges, ProgressAppearsOnlyAtATerminal) {
  struct DelayZero {
    DelayZero() { ::setenv("QTOOL_PROGRESS_DELAY", "0", 1); }
    ~DelayZero() { ::unsetenv("QTOOL_PROGRESS_DELAY"); }
  } delay_zero;
  write("w.npy", npy_of("<f4", {8, 256}, weights(8, 256)));
  write("x.npy", npy_of("<f4", {64, 256}, weights(64, 256)));
  const std::string cwd = path("").string();
  const struct {
    std::vector<std::string> args;
    std::string bar;
  } runs[] = {
      {{"demo"}, "demo ["},
      {{"bench", "--size", "128", "--batch", "2", "--repeat", "2"}, "bench ["},
      {{"quantize", "w.npy", "-o", "g.npz", "--method", "gptq", "--acts", "x.npy"}, "gptq ["},
      {{"quantize", "w.npy", "-o", "a.npz", "--method", "awq", "--acts", "x.npy", "--json"}, "awq ["},
  };
  for (const auto& run : runs) {
    const ProcessResult at_terminal = run_qtool_at_terminal(run.args, cwd);
    ASSERT_EQ(at_terminal.exit_code, 0) << run.args[0] << ": " << at_terminal.err;
    EXPECT_THAT(at_terminal.err, HasSubstr(run.bar)) << run.args[0];
    EXPECT_THAT(at_terminal.err, HasSubstr("100%")) << run.args[0];
    const ProcessResult piped = run_qtool(run.args, cwd);
    ASSERT_EQ(piped.exit_code, 0) << run.args[0] << ": " << piped.err;
    EXPECT_THAT(piped.err, testing::Not(HasSubstr(run.bar))) << run.args[0];
    if (run.args.back() == "--json") {
      EXPECT_TRUE(json::accept(at_terminal.out)) << at_terminal.out;
      EXPECT_TRUE(json::accept(piped.out)) << piped.out;
    }
  }
}

}  // namespace
}  // namespace qk::cli_test
