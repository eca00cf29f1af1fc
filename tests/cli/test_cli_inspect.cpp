// qtool inspect: statistics of a .npy, the spec of a quantized .npz, the members of a plain .npz, errors
// against a reference, and the --json report.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_fixture.hpp"

namespace qk::cli_test {
namespace {

using CliInspect = Cli;

TEST_F(CliInspect, NpyStatistics) {
  write_weights();
  const ProcessResult r = ok({"inspect", "w.npy"});
  EXPECT_THAT(r.out, StartsWith("w.npy: .npy (4, 64) float32"));
  for (const char* part : {"count 256", "min ", "max ", "mean ", "std ", "percentiles:", "histogram:"}) {
    EXPECT_THAT(r.out, HasSubstr(part));
  }
  EXPECT_THAT(r.out, testing::Not(HasSubstr("SQNR")));
}

TEST_F(CliInspect, NpyAgainstAReference) {
  write_weights();
  ok({"fake-quant", "w.npy", "-o", "fq.npy"});
  const ProcessResult r = ok({"inspect", "fq.npy", "--reference", "w.npy"});
  EXPECT_THAT(r.out, HasSubstr("vs reference: MSE"));
  EXPECT_THAT(r.out, HasSubstr("SQNR"));
  EXPECT_THAT(r.out, HasSubstr(" dB"));
}

TEST_F(CliInspect, QuantizedFile) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz"});
  ProcessResult r = ok({"inspect", "q.npz"});
  EXPECT_THAT(r.out, StartsWith("q.npz: quantized (4, 64) (from float32)"));
  EXPECT_THAT(r.out, HasSubstr("8-bit signed symmetric per_channel (axis 0), codes [-128, 127]"));
  EXPECT_THAT(r.out, HasSubstr("4 scale(s)"));
  r = ok({"inspect", "q.npz", "--reference", "w.npy"});
  EXPECT_THAT(r.out, HasSubstr("SQNR"));
  ok({"quantize", "w.npy", "-o", "q4.npz", "--bits", "4", "--group-size", "32"});
  r = ok({"inspect", "q4.npz"});
  EXPECT_THAT(r.out, HasSubstr("4-bit signed symmetric per_group (group size 32), codes [-8, 7], packed"));
}

TEST_F(CliInspect, PlainArchive) {
  io::NpzWriter writer;
  const std::vector<float> a(6, 1.5f);
  writer.add<float>("weights", {2, 3}, a);
  writer.write(path("plain.npz").string());
  const ProcessResult r = ok({"inspect", "plain.npz"});
  EXPECT_THAT(r.out, HasSubstr("plain.npz: .npz with 1 member(s)"));
  EXPECT_THAT(r.out, HasSubstr("weights"));
}

TEST_F(CliInspect, ReferenceOfAnotherShape) {
  write_weights();
  write("other.npy", npy_of("<f4", {2, 128}, weights(2, 128)));
  ok({"quantize", "w.npy", "-o", "q.npz"});
  expect_clean_failure({"inspect", "q.npz", "--reference", "other.npy"}, "", "other.npy",
                       "reference shape (2, 128) differs from (4, 64)");
  expect_clean_failure({"inspect", "w.npy", "--reference", "other.npy"}, "", "other.npy",
                       "reference shape (2, 128) differs from (4, 64)");
}

using CliJson = Cli;

TEST_F(CliJson, Inspect) {
  write_weights();
  ok({"quantize", "w.npy", "-o", "q.npz"});
  const json n = json::parse(ok({"inspect", "w.npy", "--json"}).out);
  expect_keys(n, {"file", "kind", "shape", "dtype", "bytes", "stats"});
  EXPECT_EQ(n["kind"], "npy");
  expect_keys(n["stats"], {"count", "nonfinite", "min", "max", "mean", "std", "percentiles", "histogram"});
  EXPECT_EQ(n["stats"]["count"], 256);

  const json q = json::parse(ok({"inspect", "q.npz", "--reference", "w.npy", "--json"}).out);
  expect_keys(q, {"file", "kind", "meta", "scales", "scale_min", "scale_max", "zero_point_min",
                  "zero_point_max", "bytes", "original_bytes", "compression_ratio", "reference", "error"});
  EXPECT_EQ(q["kind"], "quantized");
  EXPECT_EQ(q["meta"]["format"], "quantkit.qtensor/3");  // symmetric int8: no zero_point member
  EXPECT_EQ(q["meta"]["zero_point_member"], false);
  EXPECT_EQ(q["original_bytes"], 1024);
  // 8-bit per channel on smooth values: the step is 1/127.5 of each row's range, ~40 dB and more.
  EXPECT_GT(q["error"]["sqnr_db"].get<double>(), 35.0);
}

}  // namespace
}  // namespace qk::cli_test
