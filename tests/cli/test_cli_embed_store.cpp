// qtool embed --store run as a child process: writing stores (synthetic, from a .npy), the tiers' report
// and its JSON keys on a small table (CI's variant of README's seed-scale run: the same checks but the
// speed ratios, which belong to benchmarks), and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "cli/cli_test_util.hpp"
#include "quantkit/embed/id_stream.hpp"
#include "quantkit/files/row_store.hpp"
#include "quantkit/io/npy.hpp"
#include "sanitized_build.hpp"

namespace qk::cli_test {
namespace {

using nlohmann::json;

TEST(CliEmbedStore, WritesStoresAndRunsEveryTierWithinTheBudget) {
  TempFolder dir;
  const auto cwd = dir.path().string();
  const auto q8 = run_qtool({"embed", "--rows", "40000", "--dim", "64", "--bits", "8", "--store", "t.q8", "--create",
                             "--seed", "3", "--json"},
                            cwd);
  ASSERT_EQ(q8.exit_code, 0) << q8.err;
  EXPECT_EQ(json::parse(q8.out)["storage"], "int8");
  EXPECT_EQ(std::filesystem::file_size(dir.file("t.q8")) % 4096, 0u);
  const auto f32 = run_qtool(
      {"embed", "--rows", "40000", "--dim", "64", "--bits", "32", "--store", "t32.npy", "--create", "--seed", "3"}, cwd);
  ASSERT_EQ(f32.exit_code, 0) << f32.err;
  // The float32 .npy is numpy's: the synthetic values of the same seed.
  const io::NpyArray table = io::read_npy(dir.file("t32.npy"));
  ASSERT_EQ(table.shape(), (Shape{40000, 64}));
  const std::vector<float> want = synthetic_table(40000, 64, 3);
  EXPECT_EQ(std::memcmp(table.raw().data(), want.data(), want.size() * 4), 0);

  const auto r = run_qtool(
      {"embed", "--store", "t.q8", "--zipf", "1.05", "--warmup-steps", "200", "--steps", "120",
       "--cache-frac", "0.05", "--fp32-store", "t32.npy", "--fp32-table", "t32.npy", "--prefetch", "--json"},
      cwd);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* key :
       {"cached_rows_per_s", "uncached_direct_rows_per_s", "fp32_store_cached_rows_per_s", "fp32_mmap_rows_per_s",
        "fp32_mmap_cold_rows_per_s", "fp32_mmap_peak_rss_bytes", "hit_rate", "oracle_hit_rate", "peak_rss_bytes",
        "ram_budget_bytes", "disk_bytes_read_per_lookup", "io_backend", "prefetch_coverage",
        "prefetch_hidden_fraction"})
    EXPECT_TRUE(j.contains(key) && !j[key].is_null()) << key;
  EXPECT_EQ(j["ids"].get<std::int64_t>(), 120 * 256);
  EXPECT_EQ(j["warmup_ids"].get<std::int64_t>(), 200 * 256);
  EXPECT_EQ(j["cache_rows"].get<std::int64_t>(), 2000);
  EXPECT_LE(j["cache_bytes"].get<std::int64_t>(), j["ram_budget_bytes"].get<std::int64_t>());
  const std::string backend = j["io_backend"];
  EXPECT_TRUE(backend == "io_uring" || backend == "pread") << backend;
  // The same byte budget holds fewer float32 rows (256-byte rows against 68-byte ones; at this small dim
  // the map, the policy and LFU's 4 bytes per table row take a large share of the budget).
  EXPECT_LT(j["fp32_store_cache_rows"].get<std::int64_t>() * 2, j["cache_rows"].get<std::int64_t>());
  // After the warm-up, LFU is near the oracle (the issue's 0.95 is README's measured figure; 0.9 leaves room
  // for this short stream).
  EXPECT_GE(j["hit_rate"].get<double>(), 0.9 * j["oracle_hit_rate"].get<double>());
  EXPECT_LE(j["hit_rate"].get<double>(), j["oracle_preloaded_hit_rate"].get<double>() + 1e-9);
  // The cache reads less from disk than reading every batch's rows.
  EXPECT_LT(j["disk_bytes_read_per_lookup"].get<double>(), j["uncached_disk_bytes_read_per_lookup"].get<double>());
  // Memory honesty: the cached path's process stays within its budget plus README's fixed overhead.
  // (qtool is built with the same sanitizers as this test, whose shadow memory and quarantine change RSS.)
  if (!test::kSanitized) {
    EXPECT_LE(j["peak_rss_bytes"].get<std::int64_t>(),
              j["ram_budget_bytes"].get<std::int64_t>() + (160 << 20));
    EXPECT_LE(j["peak_rss_bytes"].get<std::int64_t>() - j["start_rss_bytes"].get<std::int64_t>(),
              j["ram_budget_bytes"].get<std::int64_t>() + (16 << 20));
  }
  // Prefetching the known next batch (waited for before each lookup): every row of a batch is resident
  // when its lookup starts but those the worker's own installs evicted meanwhile (how much time that hides
  // is a benchmark figure, not a test).
  EXPECT_GE(j["prefetch_coverage"].get<double>(), 0.9);
  EXPECT_LE(j["prefetch_coverage"].get<double>(), 1.0);
  EXPECT_TRUE(std::isfinite(j["prefetch_hidden_fraction"].get<double>()));

  const auto text = run_qtool({"embed", "--store", "t.q8", "--steps", "20", "--ram-budget", "1MiB", "--io", "pread",
                               "--buffered", "--policy", "lru"},
                              cwd);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* fragment : {"pread", "buffered", "hit rate", "uncached direct reads", "peak RSS"})
    EXPECT_NE(text.out.find(fragment), std::string::npos) << fragment << "\n" << text.out;
}

TEST(CliEmbedStore, WritesAStoreFromANpyTableEqualToTheLibrarys) {
  TempFolder dir;
  const std::vector<float> values = synthetic_table(500, 24, 9);
  io::write_npy(dir.file("t.npy"), TensorView<const float>(values.data(), {500, 24}));
  const auto r = run_qtool({"embed", "--table", "t.npy", "--bits", "4", "--store", "t.q4"}, dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto store = RowStore::open(dir.file("t.q4"));
  const EmbeddingTable want =
      EmbeddingTable::from_floats(TensorView<const float>(values.data(), {500, 24}), EmbeddingStorage::kInt4);
  std::vector<std::int64_t> ids(500);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
  std::vector<const std::uint8_t*> rows(ids.size());
  const auto fetcher = store->fetcher();  // the rows live in its buffer
  fetcher->fetch(ids, rows);
  for (std::int64_t i = 0; i < 500; ++i)
    ASSERT_EQ(std::memcmp(rows[static_cast<std::size_t>(i)], want.row_data(i), static_cast<std::size_t>(want.row_bytes())), 0)
        << "row " << i;
}

// numpy reads what --store writes: the float .npy stores as arrays, and the int8 row store by its documented
// layout (header fields at fixed offsets, row i at data_offset + i * row_stride, codes * scale + bias).
TEST(CliEmbedStore, NumpyReadsTheStoresItsLayoutDescribes) {
  const std::string python = numpy_python();
  if (python.empty()) GTEST_SKIP() << "no python3 that imports numpy";
  TempFolder dir;
  const auto cwd = dir.path().string();
  for (const char* args : {"32 t32.npy", "16 t16.npy", "8 t.q8"}) {
    const std::string a(args);
    const auto r = run_qtool({"embed", "--rows", "300", "--dim", "40", "--seed", "5", "--create", "--bits",
                              a.substr(0, a.find(' ')), "--store", a.substr(a.find(' ') + 1)},
                             cwd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const std::vector<float> values = synthetic_table(300, 40, 5);
  io::write_npy(dir.file("want.npy"), TensorView<const float>(values.data(), {300, 40}));
  std::ofstream(dir.file("check.py")) << R"(
import struct, numpy as np
want = np.load("want.npy")
f32, f16 = np.load("t32.npy"), np.load("t16.npy")
assert f32.dtype == np.float32 and f32.shape == (300, 40) and np.array_equal(f32, want)
assert f16.dtype == np.float16 and np.array_equal(f16, want.astype(np.float16))
raw = np.fromfile("t.q8", dtype=np.uint8)
assert raw[:8].tobytes() == b"QKROWS\x00\x01"
version, storage, rows, dim, row_bytes, stride, offset = struct.unpack("<IIqqqqq", raw[8:56].tobytes())
assert (version, storage, rows, dim, row_bytes, stride, offset) == (1, 2, 300, 40, 44, 44, 4096)
assert raw.size % 4096 == 0 and raw.size >= offset + rows * stride
table = raw[offset:offset + rows * stride].reshape(rows, stride)
scale = table[:, dim:dim + 2].copy().view(np.float16).astype(np.float32)
bias = table[:, dim + 2:dim + 4].copy().view(np.float16).astype(np.float32)
values = table[:, :dim].astype(np.float32) * scale + bias
# Within half a step, plus the float16 rounding of the bias the codes were computed from.
err = np.abs(values - want)
bound = scale / 2 + np.abs(bias) * 2.0**-11 + 1e-6
assert (err <= bound).all(), float((err - bound).max())
)";
  const ProcessResult r = run_process({python, "check.py"}, cwd);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(CliEmbedStore, BadInputGetsOneLineAndTheRightExitCode) {
  TempFolder dir;
  const auto cwd = dir.path().string();
  ASSERT_EQ(run_qtool({"embed", "--rows", "100", "--dim", "8", "--store", "t.q8", "--create"}, cwd).exit_code, 0);
  const std::vector<std::int64_t> ids = {1, 2, 100};
  io::write_npy(dir.file("ids.npy"), TensorView<const std::int64_t>(ids.data(), {3}));
  const auto expect = [&](const std::vector<std::string>& args, int code, const std::string& words) {
    const auto r = run_qtool(args, cwd);
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_NE(r.err.find(words), std::string::npos) << r.err;
  };
  expect({"embed", "--store", "t.q8", "--ids", "ids.npy"}, 1, "out of range");
  expect({"embed", "--store", "t.q8", "--dim", "16"}, 1, "dim 8, expected 16");
  expect({"embed", "--store", "t.q8", "--bits", "4"}, 1, "expected int4");
  expect({"embed", "--store", "."}, 1, "folder");
  expect({"embed", "--store", "missing.q8"}, 1, "missing.q8");
  expect({"embed", "--create", "--rows", "10"}, 2, "--create needs --store");
  expect({"embed", "--warmup-steps", "5"}, 2, "--warmup-steps needs --store");
  expect({"embed", "--store", "t.q8", "--bag-size", "4"}, 2, "--bag-size does not apply with --store");
  expect({"embed", "--store", "u.q8", "--create", "--table", "t.npy"}, 2, "not both");
  expect({"embed", "--store", "t.q8", "--ram-budget", "100"}, 1, "holds no row");
  expect({"embed", "--store", "t.q8", "--ram-budget", "1MB", "--cache-frac", "0.1"}, 2, "not both");
  expect({"embed", "--store", "t.q8", "--fp32-store", "t.q8"}, 1, "expected fp32");
}

}  // namespace
}  // namespace qk::cli_test
