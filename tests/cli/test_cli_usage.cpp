// Misuse of qtool's command line (exit code 2, a usage error line, nothing written), --help and --version.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>

#include "cli_fixture.hpp"

namespace qk::cli_test {
namespace {

// Misuse of the command line: exit code 2.

struct Misuse {
  const char* name;
  std::vector<std::string> args;
  const char* phrase;
};

void PrintTo(const Misuse& c, std::ostream* os) { *os << c.name; }

class CliUsage : public Cli, public testing::WithParamInterface<Misuse> {};

TEST_P(CliUsage, ExitsWithTwo) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz"});
  io::NpzWriter plain;
  plain.add<float>("w", {2}, std::vector<float>{1.0f, 2.0f});
  plain.write(path("plain.npz").string());
  const auto before = snapshot(folder_.path());
  const ProcessResult r = qtool(GetParam().args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("qtool: usage error: "));
  EXPECT_THAT(r.err, HasSubstr(GetParam().phrase));
  expect_folder_unchanged(before);
}

INSTANTIATE_TEST_SUITE_P(
    Args, CliUsage,
    testing::Values(
        Misuse{"NoSubcommand", {}, "A subcommand is required"},
        Misuse{"UnknownSubcommand", {"frobnicate"}, "qtool: usage error: "},
        Misuse{"UnknownOption", {"quantize", "w.npy", "-o", "out.npz", "--bogus"}, "--bogus"},
        Misuse{"PerTensorWithAxis",
               {"quantize", "w.npy", "-o", "out.npz", "--per-tensor", "--axis", "0"},
               "--per-tensor excludes --axis"},
        Misuse{"AxisWithGroupSize",
               {"quantize", "w.npy", "-o", "out.npz", "--axis", "0", "--group-size", "32"},
               "--axis excludes --group-size"},
        Misuse{"QminWithoutQmax",
               {"quantize", "w.npy", "-o", "out.npz", "--qmin", "-3"},
               "--qmin requires --qmax"},
        Misuse{"ScaleWithoutZeroPoint",
               {"fake-quant", "w.npy", "-o", "out.npy", "--scale", "0.1"},
               "--scale requires --zero-point"},
        Misuse{"MissingOutput", {"quantize", "w.npy"}, "--output is required"},
        Misuse{"BitsNotANumber", {"quantize", "w.npy", "-o", "out.npz", "--bits", "eight"}, "--bits"},
        Misuse{"UnknownDequantizeDtype", {"dequantize", "q.npz", "-o", "out.npy", "--dtype", "f99"}, "f99"},
        Misuse{"ReferenceForAPlainArchive",
               {"inspect", "plain.npz", "--reference", "w.npy"},
               "--reference needs a .npy or a quantized .npz"}),
    [](const testing::TestParamInfo<Misuse>& info) { return std::string(info.param.name); });

using CliHelp = Cli;

TEST_F(CliHelp, HelpAndVersion) {
  ProcessResult r = ok({"--help"});
  EXPECT_THAT(r.out, HasSubstr("Usage"));
  for (const char* sub : {"quantize", "dequantize", "fake-quant", "inspect", "demo", "bench"})
    EXPECT_THAT(r.out, HasSubstr(sub));
  r = ok({"quantize", "--help"});
  for (const char* option :
       {"--bits", "--unsigned", "--affine", "--per-tensor", "--axis", "--group-size", "--qmin", "--qmax",
        "--reduce-range", "--scale", "--zero-point", "--allow-nonfinite", "--json"}) {
    EXPECT_THAT(r.out, HasSubstr(option));
  }
  r = ok({"--version"});
  EXPECT_THAT(r.out, StartsWith("qtool (quantkit) "));
}

}  // namespace
}  // namespace qk::cli_test
