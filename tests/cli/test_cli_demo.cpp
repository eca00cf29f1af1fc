// qtool demo: the table of formats on the bundled Silero VAD weights.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_fixture.hpp"

namespace qk::cli_test {
namespace {

TEST(CliDemo, PrintsEveryFormat) {
  const TempFolder folder;
  const ProcessResult r = run_qtool({"demo"}, folder.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* row : {"| fp32 |", "| fp16 |", "| int8-per-channel |", "| int4-per-group |"})
    EXPECT_THAT(r.out, HasSubstr(row));
}

TEST(CliDemo, Int8PerChannelKeepsTheBundledWeights) {
  const TempFolder folder;
  const ProcessResult r = run_qtool({"demo", "--json"}, folder.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  bool found = false;
  for (const auto& row : j["results"]) {
    if (row["format"] != "int8-per-channel") continue;
    found = true;
    // README's demo table: INT8 per channel keeps ~39 dB on the Silero VAD weights; 35 leaves room for
    // rounding-rule changes, while any real regression (a wrong axis, a lost scale) drops far below.
    EXPECT_GT(row["sqnr_db"].get<double>(), 35.0);
  }
  EXPECT_TRUE(found) << r.out;
}

}  // namespace
}  // namespace qk::cli_test
