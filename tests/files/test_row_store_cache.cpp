// The RAM tier in front of a row store on disk: cached == uncached (direct reads) == the table in RAM, bit
// for bit, for every policy and storage; the byte budget holds (resident memory measured in a child
// process); prefetching from disk covers the next batch; readers and the prefetch worker run together
// (ThreadSanitizer runs RowStoreCache.Concurrent*).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "io/io_test_util.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/embed/cache_replay.hpp"
#include "quantkit/embed/hot_row_cache.hpp"
#include "quantkit/embed/id_stream.hpp"
#include "quantkit/embed/prefetcher.hpp"
#include "quantkit/files/row_store.hpp"
#include "sanitized_build.hpp"

namespace qk {
namespace {

using io::test::ScratchDir;

std::shared_ptr<const EmbeddingTable> table_in_ram(std::int64_t rows, std::int64_t dim,
                                                   EmbeddingStorage storage) {
  const std::vector<float> values = synthetic_table(rows, dim, 7);
  return std::make_shared<EmbeddingTable>(
      EmbeddingTable::from_floats(TensorView<const float>(values.data(), {rows, dim}), storage));
}

std::vector<std::int64_t> zipf_ids(std::int64_t rows, std::int64_t length, std::uint64_t seed) {
  ZipfStreamOptions z;
  z.rows = rows;
  z.length = length;
  z.exponent = 1.05;
  z.seed = seed;
  return zipf_stream(z);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(RowStoreCache, CachedEqualsUncachedEqualsInRamForEveryPolicyAndStorage) {
  ScratchDir dir;
  const std::int64_t rows = 3000, dim = 40, batch = 64;
  const auto ids = zipf_ids(rows, 64 * 40, 3);
  for (const EmbeddingStorage storage :
       {EmbeddingStorage::kF32, EmbeddingStorage::kF16, EmbeddingStorage::kInt8, EmbeddingStorage::kInt4}) {
    const std::string path = dir.file(std::string("t.") + to_string(storage));
    create_synthetic_row_store(rows, dim, 7, storage, path);
    const std::shared_ptr<const RowStore> store = RowStore::open(path);
    const auto table = table_in_ram(rows, dim, storage);
    for (const CachePolicy policy : {CachePolicy::kLru, CachePolicy::kLfu, CachePolicy::kStatic}) {
      SCOPED_TRACE(std::string(to_string(storage)) + " " + to_string(policy));
      HotRowCacheOptions o;
      o.policy = policy;
      o.capacity_rows = rows / 20;
      o.static_rows = std::vector<std::int64_t>(ids.begin(), ids.begin() + 500);
      HotRowCache cache(store, o);
      auto fetcher = store->fetcher();
      for (std::int64_t start = 0; start < static_cast<std::int64_t>(ids.size()); start += batch) {
        const std::span<const std::int64_t> b(ids.data() + start, static_cast<std::size_t>(batch));
        std::vector<float> cached(b.size() * dim), uncached(b.size() * dim), ram(b.size() * dim);
        cache.lookup(b, cached);
        lookup_from_source(*store, *fetcher, b, uncached);
        embedding_lookup(*table, b, ram);
        ASSERT_TRUE(same_bits(cached, ram)) << "batch at " << start;
        ASSERT_TRUE(same_bits(uncached, ram)) << "batch at " << start;
      }
      const CacheStats st = cache.stats();
      EXPECT_GT(st.hits, 0u);
      EXPECT_GT(st.source_bytes_read, 0u);
      // Bags take the same rows.
      const std::vector<std::int64_t> bag_ids(ids.begin(), ids.begin() + 12);
      const std::vector<std::int64_t> offsets = {0, 5, 5};
      std::vector<float> cached_bags(3 * dim), ram_bags(3 * dim);
      cache.embedding_bag(bag_ids, offsets, {}, cached_bags);
      embedding_bag(*table, bag_ids, offsets, {}, ram_bags);
      EXPECT_TRUE(same_bits(cached_bags, ram_bags));
    }
  }
}

TEST(RowStoreCache, TheBudgetCoversSlabMapAndPolicyAndHoldsMoreRowsThanFloat32) {
  ScratchDir dir;
  const std::string q8 = dir.file("t.q8"), f32 = dir.file("t.f32");
  create_synthetic_row_store(10000, 256, 7, EmbeddingStorage::kInt8, q8);
  create_synthetic_row_store(10000, 256, 7, EmbeddingStorage::kF32, f32);
  const std::shared_ptr<const RowStore> int8 = RowStore::open(q8), fp32 = RowStore::open(f32);
  const std::int64_t budget = 1 << 20;
  for (const CachePolicy policy : {CachePolicy::kLru, CachePolicy::kLfu}) {
    HotRowCacheOptions o;
    o.policy = policy;
    o.capacity_bytes = budget;
    const HotRowCache a(int8, o), b(fp32, o);
    EXPECT_LE(a.bytes(), budget);
    EXPECT_LE(b.bytes(), budget);
    // One more row would not fit.
    EXPECT_GT(HotRowCache::bytes_for(*int8, policy, a.capacity_rows() + 1), budget);
    // 260-byte INT8 rows against 1024-byte float32 rows, each with its map and policy share.
    EXPECT_GT(static_cast<double>(a.capacity_rows()), 3.2 * static_cast<double>(b.capacity_rows()));
  }
}

// Resident set size now and its peak, from /proc/self/status (bytes).
std::int64_t proc_status_bytes(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(std::strlen(field))) * 1024;
  }
  return -1;
}

TEST(RowStoreCache, ResidentMemoryStaysWithinTheBudgetPlusAFixedOverhead) {
  if (test::kSanitized) GTEST_SKIP() << "a sanitizer's redzones and quarantine change resident memory";
  ScratchDir dir;
  const std::string path = dir.file("t.q8");
  const std::int64_t rows = 400000, dim = 128;  // 53 MB on disk, more than the budget
  create_synthetic_row_store(rows, dim, 7, EmbeddingStorage::kInt8, path);
  const auto ids = zipf_ids(rows, 256 * 1200, 1);
  for (const CachePolicy policy : {CachePolicy::kLfu, CachePolicy::kLru, CachePolicy::kStatic}) {
    SCOPED_TRACE(to_string(policy));
    // In a child: its peak resident memory starts from what it inherits, measured just before the cache.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      int code = 0;
      try {
        const std::int64_t budget = 6 << 20;  // ~30k rows, half of the stream's ~62k distinct ones
        const std::shared_ptr<const RowStore> store = RowStore::open(path);
        std::vector<float> out(256 * dim);
        HotRowCacheOptions o;
        o.policy = policy;
        o.capacity_bytes = budget;
        if (policy == CachePolicy::kStatic)
          o.static_rows = top_rows(ids, rows, HotRowCache::capacity_for_budget(*store, policy, budget));
        const std::int64_t before = proc_status_bytes("VmRSS:");
        HotRowCache cache(store, o);
        for (std::size_t start = 0; start + 256 <= ids.size(); start += 256)
          cache.lookup(std::span(ids.data() + start, 256), out);
        const std::int64_t peak = proc_status_bytes("VmHWM:");
        // The cache filled (so the budget was used), and the process grew by at most the budget plus the
        // fixed overhead README states: a fetcher's buffer and ring, well under 4 MiB here.
        if (cache.resident_rows() != cache.capacity_rows()) code = 2;
        if (peak - before > budget + (4 << 20)) code = 1;
      } catch (...) {
        code = 3;
      }
      ::_exit(code);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "1: grew beyond the budget + 4 MiB; 2: the cache did not fill; 3: threw";
  }
}

TEST(RowStoreCache, ABudgetTooSmallForOneRowIsRefused) {
  ScratchDir dir;
  const std::string path = dir.file("t.q8");
  create_synthetic_row_store(100000, 16, 7, EmbeddingStorage::kInt8, path);
  const std::shared_ptr<const RowStore> store = RowStore::open(path);
  HotRowCacheOptions o;
  o.capacity_bytes = 100000;  // LFU's counts alone take 400 KB
  EXPECT_THROW(HotRowCache(store, o), Error);
  o.policy = CachePolicy::kLru;
  EXPECT_GT(HotRowCache(store, o).capacity_rows(), 1000);
}

TEST(RowStoreCache, PrefetchFromDiskMakesTheNextBatchResident) {
  ScratchDir dir;
  const std::string path = dir.file("t.q4");
  const std::int64_t rows = 50000, dim = 64, batch = 128;
  create_synthetic_row_store(rows, dim, 7, EmbeddingStorage::kInt4, path);
  const std::shared_ptr<const RowStore> store = RowStore::open(path);
  HotRowCacheOptions o;
  o.policy = CachePolicy::kLru;
  o.capacity_rows = 5000;
  HotRowCache cache(store, o);
  const auto ids = zipf_ids(rows, batch * 50, 2);
  Prefetcher prefetcher(cache);
  std::vector<float> out(batch * dim);
  std::int64_t resident = 0, unique = 0;
  prefetcher.prefetch(std::span(ids.data(), batch));
  for (std::int64_t start = 0; start < static_cast<std::int64_t>(ids.size()); start += batch) {
    prefetcher.wait();  // the worker finished reading this batch's rows from disk
    if (start + 2 * batch <= static_cast<std::int64_t>(ids.size()))
      prefetcher.prefetch(std::span(ids.data() + start + batch, batch));
    BatchInfo info;
    cache.lookup(std::span(ids.data() + start, batch), out, &info);
    resident += info.resident_at_start;
    unique += info.unique;
  }
  prefetcher.wait();
  // Waiting for each prefetch before its batch, every row is resident but those the worker's own next
  // batch evicted meanwhile (rare with 5000 slots).
  EXPECT_GE(static_cast<double>(resident) / static_cast<double>(unique), 0.95);
  EXPECT_GT(prefetcher.stats().rows_installed, 0);
}

TEST(RowStoreCache, ConcurrentReadersAndPrefetchWorkerGetTheTableInRamBits) {
  ScratchDir dir;
  const std::string path = dir.file("t.q8");
  const std::int64_t rows = 20000, dim = 32, batch = 64;
  create_synthetic_row_store(rows, dim, 7, EmbeddingStorage::kInt8, path);
  const std::shared_ptr<const RowStore> store = RowStore::open(path);
  const auto table = table_in_ram(rows, dim, EmbeddingStorage::kInt8);
  HotRowCacheOptions o;
  o.capacity_rows = 1000;
  HotRowCache cache(store, o);
  Prefetcher prefetcher(cache);
  const auto ids = zipf_ids(rows, batch * 60, 4);
  std::atomic<int> mismatches{0};
  auto reader = [&](int phase) {
    std::vector<float> got(batch * dim), want(batch * dim);
    for (std::int64_t start = phase * batch; start + batch <= static_cast<std::int64_t>(ids.size());
         start += 2 * batch) {
      const std::span<const std::int64_t> b(ids.data() + start, static_cast<std::size_t>(batch));
      if (phase == 0 && start + 3 * batch <= static_cast<std::int64_t>(ids.size()))
        prefetcher.prefetch(std::span(ids.data() + start + 2 * batch, static_cast<std::size_t>(batch)));
      cache.lookup(b, got);
      embedding_lookup(*table, b, want);
      if (!same_bits(got, want)) ++mismatches;
    }
  };
  std::thread other(reader, 1);
  reader(0);
  other.join();
  prefetcher.wait();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(RowStoreCache, RefusesIdsOutOfRangeNamingTheStore) {
  ScratchDir dir;
  const std::string path = dir.file("t.q8");
  create_synthetic_row_store(100, 8, 7, EmbeddingStorage::kInt8, path);
  const std::shared_ptr<const RowStore> store = RowStore::open(path);
  HotRowCacheOptions o;
  o.capacity_rows = 10;
  HotRowCache cache(store, o);
  const std::vector<std::int64_t> bad = {3, 100};
  std::vector<float> out(2 * 8);
  try {
    cache.lookup(bad, out);
    ADD_FAILURE() << "an id out of range was looked up";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
  }
  auto fetcher = store->fetcher();
  EXPECT_THROW(lookup_from_source(*store, *fetcher, bad, out), Error);
}

}  // namespace
}  // namespace qk
