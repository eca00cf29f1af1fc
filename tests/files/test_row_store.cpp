// Row stores on disk: the format (round trip for every storage, alignment, truncated or lying headers),
// streamed creation (from .npy and the generator; a full disk leaves nothing behind), and fetched rows
// equal to the table in RAM through direct and buffered reads.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "io/io_test_util.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/embed/id_stream.hpp"
#include "quantkit/files/row_store.hpp"
#include "quantkit/io/npy.hpp"

namespace qk {
namespace {

using io::test::ScratchDir;

constexpr EmbeddingStorage kStorages[] = {EmbeddingStorage::kF32, EmbeddingStorage::kF16,
                                          EmbeddingStorage::kInt8, EmbeddingStorage::kInt4};

EmbeddingTable table_in_ram(std::int64_t rows, std::int64_t dim, std::uint64_t seed,
                            EmbeddingStorage storage) {
  const std::vector<float> values = synthetic_table(rows, dim, seed);
  return EmbeddingTable::from_floats(TensorView<const float>(values.data(), {rows, dim}), storage);
}

// Ids with repeats, neighbours sharing a block, both ends of the table, in no order.
std::vector<std::int64_t> awkward_ids(std::int64_t rows, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::int64_t> ids = {rows - 1, 0, 1, 2, rows - 2, 0};
  for (int i = 0; i < 300; ++i)
    ids.push_back(static_cast<std::int64_t>(rng() % static_cast<std::uint32_t>(rows)));
  for (int i = 0; i < 20; ++i)
    ids.push_back(ids[static_cast<std::size_t>(i * 7)] + (ids[static_cast<std::size_t>(i * 7)] + 1 < rows));
  return ids;
}

void expect_rows_equal(RowFetcher& fetcher, const EmbeddingTable& table, std::span<const std::int64_t> ids) {
  std::vector<const std::uint8_t*> rows(ids.size());
  const std::int64_t read = fetcher.fetch(ids, rows);
  EXPECT_GT(read, 0);
  for (std::size_t k = 0; k < ids.size(); ++k)
    ASSERT_EQ(std::memcmp(rows[k], table.row_data(ids[k]), static_cast<std::size_t>(table.row_bytes())), 0)
        << "row " << ids[k] << " at position " << k;
}

TEST(RowStore, RoundTripsEveryStorageThroughDirectAndBufferedReads) {
  ScratchDir dir;
  for (const EmbeddingStorage storage : kStorages) {
    for (const std::int64_t dim : {1, 7, 100, 256}) {
      SCOPED_TRACE(std::string(to_string(storage)) + " dim " + std::to_string(dim));
      const std::int64_t rows = 2000;
      const std::string path = dir.file("t.store");
      const RowStoreHeader written = create_synthetic_row_store(rows, dim, 7, storage, path);
      EXPECT_EQ(written.data_offset, 4096);
      EXPECT_EQ(std::filesystem::file_size(path) % 4096, 0u);  // padded to whole pages
      const auto store = RowStore::open(path);
      EXPECT_EQ(store->rows(), rows);
      EXPECT_EQ(store->dim(), dim);
      EXPECT_EQ(store->storage(), storage);
      EXPECT_EQ(store->header().row_bytes, embedding_row_bytes(storage, dim));
      const EmbeddingTable table = table_in_ram(rows, dim, 7, storage);
      const auto ids = awkward_ids(rows, 3);
      auto direct = store->fetcher();
      expect_rows_equal(*direct, table, ids);
      auto buffered = store->fetcher({false, io::ReadBackend::kPread, 4});
      expect_rows_equal(*buffered, table, ids);
      expect_rows_equal(*direct, table, std::span(ids).first(1));  // the buffer is reused
    }
  }
}

TEST(RowStore, NeighbouringRowsInOneBlockAreReadOnce) {
  ScratchDir dir;
  const std::string path = dir.file("t.q8");
  create_synthetic_row_store(1000, 64, 7, EmbeddingStorage::kInt8, path);  // 68-byte rows, 60 per block
  auto fetcher = RowStore::open(path)->fetcher();
  std::vector<std::int64_t> ids(50);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
  std::vector<const std::uint8_t*> rows(ids.size());
  // Rows 0..49 sit at bytes 4096 .. 4096 + 50 * 68: one block.
  EXPECT_EQ(fetcher->fetch(ids, rows), 4096);
  const std::vector<std::int64_t> far = {0, 999};
  EXPECT_EQ(fetcher->fetch(far, std::span(rows).first(2)), 2 * 4096);
}

TEST(RowStore, RequestsSplitAtTheirSizeLimitAndStillReturnEveryRow) {
  ScratchDir dir;
  const std::string path = dir.file("t.f32");
  const std::int64_t rows = 3000, dim = 300;  // 1200-byte rows: some straddle two blocks
  create_synthetic_row_store(rows, dim, 7, EmbeddingStorage::kF32, path);
  const EmbeddingTable table = table_in_ram(rows, dim, 7, EmbeddingStorage::kF32);
  std::vector<std::int64_t> ids(rows);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(ids.size() - 1 - i);
  for (const std::int64_t limit :
       {std::int64_t{4096}, std::int64_t{8192}, std::int64_t{12288}, std::int64_t{1} << 20}) {
    SCOPED_TRACE(limit);
    RowStoreOptions o;
    o.max_request_bytes = limit;
    auto fetcher = RowStore::open(path, o)->fetcher();
    expect_rows_equal(*fetcher, table, ids);                   // every row, in reverse
    expect_rows_equal(*fetcher, table, awkward_ids(rows, 5));  // and scattered
  }
}

TEST(RowStore, StreamsFromNpyAndReadsFloatNpyAsAStore) {
  ScratchDir dir;
  const std::int64_t rows = 777, dim = 33;
  const std::vector<float> values = synthetic_table(rows, dim, 5);
  const std::string npy = dir.file("table.npy");
  io::write_npy(npy, TensorView<const float>(values.data(), {rows, dim}));
  for (const EmbeddingStorage storage : kStorages) {
    const std::string out = dir.file(std::string("t.") + to_string(storage));
    create_row_store_from_npy(npy, storage, out);
    const EmbeddingTable table =
        EmbeddingTable::from_floats(TensorView<const float>(values.data(), {rows, dim}), storage);
    auto fetcher = RowStore::open(out)->fetcher();
    expect_rows_equal(*fetcher, table, awkward_ids(rows, 9));
  }
  // The float32 .npy itself, and a float16 .npy written from it, are stores (rows at npy's data offset).
  const auto as_store = RowStore::open(npy);
  EXPECT_TRUE(as_store->header().npy);
  EXPECT_EQ(as_store->storage(), EmbeddingStorage::kF32);
  const EmbeddingTable f32 = EmbeddingTable::from_floats(TensorView<const float>(values.data(), {rows, dim}),
                                                         EmbeddingStorage::kF32);
  expect_rows_equal(*as_store->fetcher(), f32, awkward_ids(rows, 1));
  const std::string f16 = dir.file("half.npy");
  create_row_store_from_npy(npy, EmbeddingStorage::kF16, f16);
  EXPECT_EQ(io::read_npy(f16).dtype(), io::DType::kFloat16);
  EXPECT_EQ(RowStore::open(f16)->storage(), EmbeddingStorage::kF16);
  EXPECT_THROW(create_row_store_from_npy(npy, EmbeddingStorage::kInt8, dir.file("q.npy")), Error);
  EXPECT_THROW(create_row_store_from_npy(npy, EmbeddingStorage::kInt8, npy), Error);  // never over the input
}

// Rewrites `size` bytes at `offset` of a file.
void patch(const std::string& path, std::int64_t offset, const void* bytes, std::size_t size) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset);
  f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(size));
}

void expect_refused(const std::string& path, const std::string& words) {
  try {
    RowStore::open(path);
    ADD_FAILURE() << "opened " << path;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(RowStore, RefusesTruncatedAndLyingHeadersAndOtherFiles) {
  ScratchDir dir;
  const std::string good = dir.file("good.q8");
  create_synthetic_row_store(500, 16, 7, EmbeddingStorage::kInt8, good);
  const auto copy = [&](const std::string& name) {
    const std::string p = dir.file(name);
    std::filesystem::copy_file(good, p);
    return p;
  };
  const std::string truncated = copy("truncated.q8");
  std::filesystem::resize_file(truncated, 4096 + 499 * 20);
  expect_refused(truncated, "too few");
  const std::string more_rows = copy("rows.q8");
  const std::int64_t lie = 1000;
  patch(more_rows, 16, &lie, 8);
  expect_refused(more_rows, "too few");
  const std::string huge_rows = copy("huge.q8");
  const std::int64_t huge = INT64_MAX / 2;
  patch(huge_rows, 16, &huge, 8);
  expect_refused(huge_rows, "too few");
  const std::string row_bytes = copy("rowbytes.q8");
  const std::int64_t wrong = 19;
  patch(row_bytes, 32, &wrong, 8);
  expect_refused(row_bytes, "row size");
  const std::string version = copy("version.q8");
  const std::uint32_t v9 = 9;
  patch(version, 8, &v9, 4);
  expect_refused(version, "version");
  const std::string storage = copy("storage.q8");
  patch(storage, 12, &v9, 4);
  expect_refused(storage, "storage");
  const std::string offset = copy("offset.q8");
  const std::int64_t odd = 100;
  patch(offset, 48, &odd, 8);
  expect_refused(offset, "data offset");
  const std::string header_only = copy("short.q8");
  std::filesystem::resize_file(header_only, 20);
  expect_refused(header_only, "truncated");
  const std::string junk = dir.file("junk.bin");
  std::ofstream(junk) << "not a store at all";
  expect_refused(junk, "not a row store");
  expect_refused(dir.path().string(), "folder");
  expect_refused(dir.file("missing.q8"), "cannot open");
  // A store for another dim or storage than the caller expects.
  RowStoreOptions want_dim;
  want_dim.expect_dim = 32;
  EXPECT_THROW(RowStore::open(good, want_dim), Error);
  RowStoreOptions want_storage;
  want_storage.expect_storage = EmbeddingStorage::kInt4;
  EXPECT_THROW(RowStore::open(good, want_storage), Error);
  RowStoreOptions right;
  right.expect_dim = 16;
  right.expect_storage = EmbeddingStorage::kInt8;
  EXPECT_NO_THROW(RowStore::open(good, right));
}

TEST(RowStore, AFullDiskWhileCreatingRemovesThePartialFile) {
  ScratchDir dir;
  const std::string path = dir.file("big.q8");
  // A file size limit makes write() fail with EFBIG as a full disk fails with ENOSPC; in a child, so
  // the limit does not reach the rest of the tests.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{1 << 20, 1 << 20};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      create_synthetic_row_store(4000, 256, 7, EmbeddingStorage::kF32, path);  // 4 MB
      ::_exit(2);
    } catch (const Error& e) {
      const bool names_it = std::string(e.what()).find("write failed") != std::string::npos;
      ::_exit(names_it ? 0 : 3);
    } catch (...) {
      ::_exit(4);
    }
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: the write did not fail; 3: the message does not say so";
  EXPECT_TRUE(dir.entries().empty()) << "a partial file was left behind";
}

}  // namespace
}  // namespace qk
