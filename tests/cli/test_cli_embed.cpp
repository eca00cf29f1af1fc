// qtool embed run as a child process: the synthetic report and its JSON keys, saving and reopening a
// quantized table, recorded ids, the sweep, and bad input.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "cli/cli_test_util.hpp"
#include "quantkit/core/tensor_view.hpp"
#include "quantkit/embed/embedding_table.hpp"
#include "quantkit/embed/id_stream.hpp"
#include "quantkit/io/npy.hpp"
#include "quantkit/io/npz.hpp"

namespace qk::cli_test {
namespace {

using nlohmann::json;

TEST(CliEmbed, SyntheticRunPrintsEveryFigureAndTheJsonKeys) {
  TempFolder dir;
  const auto text = run_qtool({"embed", "--rows", "5000", "--dim", "64", "--steps", "20", "--prefetch"},
                              dir.path().string());
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* fragment :
       {"hit rate", "oracle", "fp32 gather", "uncached", "prefetch", "coverage", "rows/s"})
    EXPECT_NE(text.out.find(fragment), std::string::npos) << fragment << "\n" << text.out;
  const auto r = run_qtool({"embed", "--rows", "5000", "--dim", "64", "--steps", "20", "--bits", "4",
                            "--prefetch", "--policy", "lru", "--bag-size", "4", "--json"},
                           dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* key : {"hit_rate", "oracle_hit_rate", "cached_rows_per_s", "uncached_rows_per_s",
                          "fp32_rows_per_s", "table_bytes", "fp32_table_bytes", "prefetch_coverage"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["storage"], "int4");
  EXPECT_EQ(j["table_bytes"].get<std::int64_t>(), 5000 * (32 + 4));
  EXPECT_EQ(j["fp32_table_bytes"].get<std::int64_t>(), 5000 * 64 * 4);
  EXPECT_GT(j["hit_rate"].get<double>(), 0.3);
  EXPECT_LE(j["prefetch_coverage"].get<double>(), 1.0);
}

TEST(CliEmbed, SavesAQuantizedTableAndReplaysRecordedIds) {
  TempFolder dir;
  const std::vector<float> values = synthetic_table(300, 16, 5);
  io::write_npy(dir.file("t.npy"), TensorView<const float>(values.data(), {300, 16}));
  std::vector<std::int32_t> ids(2000);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>((i * i) % 300);
  io::write_npy(dir.file("ids.npy"), TensorView<const std::int32_t>(ids.data(), {2000}));
  const auto saved =
      run_qtool({"embed", "--table", "t.npy", "--bits", "8", "--save", "t8.npz"}, dir.path().string());
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  // The saved rows, byte for byte, are the library's int8 rows of the same floats (which
  // tests/embed/test_embedding_table.cpp checks against golden rule 8 written independently).
  const io::NpyArray rows = io::read_npz_member(dir.file("t8.npz"), "rows");
  const EmbeddingTable want =
      EmbeddingTable::from_floats(TensorView<const float>(values.data(), {300, 16}), EmbeddingStorage::kInt8);
  ASSERT_EQ(rows.shape(), (Shape{300, embedding_row_bytes(EmbeddingStorage::kInt8, 16)}));
  const std::vector<std::uint8_t> bytes = rows.to_vector<std::uint8_t>();
  ASSERT_EQ(static_cast<std::int64_t>(bytes.size()), want.bytes());
  for (std::int64_t r = 0; r < 300; ++r)
    ASSERT_EQ(0, std::memcmp(bytes.data() + r * want.row_bytes(), want.row_data(r),
                             static_cast<std::size_t>(want.row_bytes())))
        << "row " << r;
  const auto r = run_qtool({"embed", "--table", "t8.npz", "--ids", "ids.npy", "--batch", "100",
                            "--cache-rows", "30", "--policy", "static", "--json"},
                           dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["storage"], "int8");
  EXPECT_EQ(j["ids"].get<std::int64_t>(), 2000);
  EXPECT_EQ(j["cache_rows"].get<std::int64_t>(), 30);
  const auto direct = run_qtool({"embed", "--table", "t.npy", "--ids", "ids.npy", "--bits", "32", "--json"},
                                dir.path().string());
  ASSERT_EQ(direct.exit_code, 0) << direct.err;
  EXPECT_EQ(json::parse(direct.out)["storage"], "fp32");
}

TEST(CliEmbed, SweepNeedsOnlyIds) {
  TempFolder dir;
  ZipfStreamOptions z;
  z.rows = 2000;
  z.length = 20000;
  const auto stream = zipf_stream(z);
  io::write_npy(dir.file("ids.npy"), TensorView<const std::int64_t>(stream.data(), {20000}));
  const auto text =
      run_qtool({"embed", "--ids", "ids.npy", "--sweep", "--rows", "2000"}, dir.path().string());
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("| cache |"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("L lru, F lfu"), std::string::npos) << text.out;
  const auto r =
      run_qtool({"embed", "--ids", "ids.npy", "--sweep", "--rows", "2000", "--json"}, dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["points"].size(), 9u);
  EXPECT_EQ(j["points"][8]["cache_fraction"].get<double>(), 0.5);
  for (const auto& p : j["points"]) EXPECT_GE(p["oracle_preloaded"].get<double>(), p["oracle"].get<double>());
}

TEST(CliEmbed, BadInputGetsAClearErrorAndTheRightExitCode) {
  TempFolder dir;
  const std::vector<float> values = synthetic_table(10, 4, 5);
  io::write_npy(dir.file("t.npy"), TensorView<const float>(values.data(), {10, 4}));
  const std::vector<std::int64_t> out_of_range = {1, 2, 10};
  io::write_npy(dir.file("big.npy"), TensorView<const std::int64_t>(out_of_range.data(), {3}));
  const std::vector<std::int64_t> negative = {1, -3};
  io::write_npy(dir.file("neg.npy"), TensorView<const std::int64_t>(negative.data(), {2}));
  io::write_npy(dir.file("float_ids.npy"), TensorView<const float>(values.data(), {40}));
  const std::vector<float> none;
  io::write_npy(dir.file("empty.npy"), TensorView<const float>(none.data(), {0, 4}));
  const auto expect = [&](const std::vector<std::string>& args, int code, const std::string& fragment) {
    const auto r = run_qtool(args, dir.path().string());
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  };
  expect({"embed", "--table", "t.npy", "--ids", "big.npy"}, 1, "out of range");
  expect({"embed", "--table", "t.npy", "--ids", "neg.npy"}, 1, "negative");
  expect({"embed", "--table", "t.npy", "--ids", "float_ids.npy"}, 1, "must be integers");
  expect({"embed", "--table", "empty.npy"}, 1, "empty");
  // A missing input file is a failure (exit 1) naming the file, as in every other subcommand.
  expect({"embed", "--table", "absent.npy"}, 1, "absent.npy");
  expect({"embed", "--table", "absent.npz"}, 1, "absent.npz");
  expect({"embed", "--table", "t.npy", "--ids", "absent_ids.npy"}, 1, "absent_ids.npy");
  expect({"embed", "--ids", "absent_ids.npy", "--sweep"}, 1, "absent_ids.npy");
  expect({"embed", "--table", "absent.npy", "--save", "t8.npz"}, 1, "absent.npy");
  expect({"embed", "--table", "t.npy", "--save", "t.npz", "--bits", "3"}, 2, "bits");
  expect({"embed", "--prefetch", "--predict", "--cache-rows", "3", "--cache-frac", "0.1"}, 2, "not both");
  expect({"embed", "--predict"}, 2, "--predict needs --prefetch");
  expect({"embed", "--table", "t.npy", "--sweep"}, 2, "--sweep");
}

}  // namespace
}  // namespace qk::cli_test
