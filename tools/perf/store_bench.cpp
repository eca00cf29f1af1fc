// qtool embed --store's measurements: each tier of a table larger than memory in its own child process.
#include "perf/store_bench.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "quantkit/core/error.hpp"
#include "quantkit/embed/cache_replay.hpp"
#include "quantkit/embed/hot_row_cache.hpp"
#include "quantkit/embed/prefetcher.hpp"
#include "quantkit/files/row_store.hpp"
#include "quantkit/io/mapped_file.hpp"
#include "quantkit/kernels/gemm.hpp"

namespace qk::perf {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A /proc/meminfo field in bytes (the OS page cache: "Cached:").
std::int64_t meminfo_bytes(const char* field) {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(std::strlen(field))) * 1024;
  }
  return 0;
}

std::int64_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

// Runs `path` in a child process and returns its result (plain data) and the child's peak resident memory.
// An error in the child comes back as a qk::Error with its message.
template <class T>
struct ChildResult {
  T value;
  std::int64_t peak_rss_bytes;
};

template <class T, class F>
ChildResult<T> in_child(const std::string& what, F&& path) {
  static_assert(std::is_trivially_copyable_v<T>);
  int fds[2];
  if (::pipe(fds) != 0)
    throw Error("embedding store benchmark: pipe() failed: " + std::string(std::strerror(errno)));
  const pid_t child = ::fork();
  if (child < 0) {
    const int fork_errno = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error("embedding store benchmark: fork() failed: " + std::string(std::strerror(fork_errno)));
  }
  if (child == 0) {
    ::close(fds[0]);
    T r{};
    std::string error;
    try {
      r = path();
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = what + ": an unknown exception";
    }
    const auto put = [&](const void* p, std::size_t n) {
      for (std::size_t done = 0; done < n;) {
        const ssize_t w = ::write(fds[1], static_cast<const char*>(p) + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) ::_exit(3);
        done += static_cast<std::size_t>(w);
      }
    };
    const std::size_t length = error.size();
    put(&r, sizeof r);
    put(&length, sizeof length);
    put(error.data(), length);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string bytes;
  char chunk[4096];
  for (ssize_t n; (n = ::read(fds[0], chunk, sizeof chunk)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    bytes.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  rusage usage{};
  while (::wait4(child, &status, 0, &usage) < 0) {
    if (errno != EINTR)
      throw Error("embedding store benchmark: wait4 failed: " + std::string(std::strerror(errno)));
  }
  T r{};
  std::size_t length = 0;
  if (WIFSIGNALED(status))
    throw Error("embedding store benchmark: the " + what + " process was killed by signal " +
                std::to_string(WTERMSIG(status)) + (WTERMSIG(status) == SIGKILL ? " (out of memory?)" : ""));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || bytes.size() < sizeof r + sizeof length)
    throw Error("embedding store benchmark: the " + what + " process failed (exit status " +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  std::memcpy(&r, bytes.data(), sizeof r);
  std::memcpy(&length, bytes.data() + sizeof r, sizeof length);
  if (length > 0) throw Error(bytes.substr(sizeof r + sizeof length, length));
  return {r, static_cast<std::int64_t>(usage.ru_maxrss) * 1024};
}

// A path's result with the child's peak resident memory filled in.
template <class F>
StorePathResult path_in_child(const std::string& what, F&& path) {
  const ChildResult<StorePathResult> c = in_child<StorePathResult>(what, std::forward<F>(path));
  StorePathResult r = c.value;
  r.peak_rss_bytes = c.peak_rss_bytes;
  return r;
}

struct Stream {
  std::span<const std::int64_t> ids;
  std::int64_t batch;
  std::int64_t warmup_batches = 0;
  // The leading batches that fill the caches untimed, and the rest, which every path times.
  std::size_t warmup_ids() const {
    return static_cast<std::size_t>(
        std::min<std::int64_t>(warmup_batches * batch, static_cast<std::int64_t>(ids.size())));
  }
  Stream warm() const { return {ids.first(warmup_ids()), batch}; }
  Stream measured() const { return {ids.subspan(warmup_ids()), batch}; }
  std::int64_t batches() const { return (static_cast<std::int64_t>(ids.size()) + batch - 1) / batch; }
  std::span<const std::int64_t> at(std::int64_t b) const {
    const std::int64_t start = b * batch;
    return ids.subspan(
        static_cast<std::size_t>(start),
        static_cast<std::size_t>(std::min(batch, static_cast<std::int64_t>(ids.size()) - start)));
  }
};

HotRowCacheOptions cache_options(const StoreBenchOptions& o, const RowSource& source, std::int64_t budget,
                                 const Stream& stream) {
  HotRowCacheOptions c;
  c.policy = o.policy;
  c.capacity_bytes = budget;
  if (o.policy == CachePolicy::kStatic) {
    // The static policy's profile: the warm-up part of the stream, or its first 10% (as qtool embed does
    // in RAM) when there is none.
    const std::int64_t k = HotRowCache::capacity_for_budget(source, o.policy, budget);
    const std::size_t profile = stream.warmup_ids() > 0 ? stream.warmup_ids() : stream.ids.size() / 10;
    c.static_rows = top_rows(stream.ids.first(profile), source.rows(), k);
  }
  return c;
}

StorePathResult run_cached(const StoreBenchOptions& o, const std::string& path, std::int64_t budget,
                           const Stream& stream) {
  RowStoreOptions so;
  so.io = o.io;
  const std::shared_ptr<const RowStore> store = RowStore::open(path, so);
  StorePathResult r;
  r.start_rss_bytes = resident_bytes();
  HotRowCache cache(store, cache_options(o, *store, budget, stream));
  std::vector<float> out(static_cast<std::size_t>(stream.batch * store->dim()));
  const auto run = [&](const Stream& part) {
    for (std::int64_t b = 0; b < part.batches(); ++b) {
      const auto ids = part.at(b);
      cache.lookup(ids, std::span(out).first(ids.size() * static_cast<std::size_t>(store->dim())));
    }
  };
  run(stream.warm());
  cache.reset_stats();
  const Stream measured = stream.measured();
  const auto start = Clock::now();
  run(measured);
  r.seconds = seconds_since(start);
  const CacheStats st = cache.stats();
  r.rows_per_s = static_cast<double>(measured.ids.size()) / r.seconds;
  r.hit_rate = st.hit_rate();
  r.disk_bytes_read = static_cast<std::int64_t>(st.source_bytes_read);
  r.cache_rows = cache.capacity_rows();
  r.cache_bytes = cache.bytes();
  return r;
}

StorePathResult run_uncached(const StoreBenchOptions& o, const Stream& stream) {
  // Nothing to warm: every batch reads its rows.
  RowStoreOptions so;
  so.io = o.io;
  const std::shared_ptr<const RowStore> store = RowStore::open(o.store, so);
  StorePathResult r;
  r.start_rss_bytes = resident_bytes();
  auto fetcher = store->fetcher();
  std::vector<float> out(static_cast<std::size_t>(stream.batch * store->dim()));
  const auto start = Clock::now();
  for (std::int64_t b = 0; b < stream.batches(); ++b) {
    const auto ids = stream.at(b);
    r.disk_bytes_read += lookup_from_source(
        *store, *fetcher, ids, std::span(out).first(ids.size() * static_cast<std::size_t>(store->dim())));
  }
  r.seconds = seconds_since(start);
  r.rows_per_s = static_cast<double>(stream.ids.size()) / r.seconds;
  return r;
}

// One pass of memcpy per id from the mapping, as a float32 table read through mmap is used.
double mmap_pass(const std::uint8_t* data, std::int64_t row_bytes, const Stream& stream,
                 std::vector<float>& out) {
  const auto start = Clock::now();
  for (std::int64_t b = 0; b < stream.batches(); ++b) {
    const auto ids = stream.at(b);
    for (std::size_t i = 0; i < ids.size(); ++i)
      std::memcpy(out.data() + static_cast<std::int64_t>(i) * (row_bytes / 4), data + ids[i] * row_bytes,
                  static_cast<std::size_t>(row_bytes));
  }
  return seconds_since(start);
}

// Lookup, then a dense layer, per batch; with the worker prefetching the next batch during the current one.
struct Pipeline {
  double lookup_s = 0, read_s = 0, compute_s = 0;
  std::int64_t resident = 0, unique = 0;
};

Pipeline run_pipeline(const StoreBenchOptions& o, std::int64_t budget, const Stream& whole, bool prefetch) {
  RowStoreOptions so;
  so.io = o.io;
  const std::shared_ptr<const RowStore> store = RowStore::open(o.store, so);
  const std::int64_t dim = store->dim();
  const std::int64_t hidden = o.compute_dim > 0 ? o.compute_dim : dim;
  std::vector<float> weights(static_cast<std::size_t>(hidden * dim));
  for (std::size_t i = 0; i < weights.size(); ++i)
    weights[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  const kernels::Fp32Weights layer = kernels::pack_fp32(weights, hidden, dim);
  std::vector<float> out(static_cast<std::size_t>(whole.batch * dim)),
      y(static_cast<std::size_t>(whole.batch * hidden));
  HotRowCache cache(store, cache_options(o, *store, budget, whole));
  const Stream warm = whole.warm(), stream = whole.measured();
  for (std::int64_t b = 0; b < warm.batches(); ++b) {
    const auto ids = warm.at(b);
    cache.lookup(ids, std::span(out).first(ids.size() * static_cast<std::size_t>(dim)));
  }
  std::unique_ptr<Prefetcher> prefetcher;
  if (prefetch) {
    prefetcher = std::make_unique<Prefetcher>(cache);
    prefetcher->prefetch(stream.at(0));
    prefetcher->wait();  // the first batch has no predecessor to hide its reads behind
  }
  Pipeline p;
  for (std::int64_t b = 0; b < stream.batches(); ++b) {
    const auto ids = stream.at(b);
    const auto n = static_cast<std::int64_t>(ids.size());
    BatchInfo info;
    const auto start = Clock::now();
    // What the worker has not finished reading by now is waited for (and counted as lookup time), rather
    // than read a second time by the lookup.
    if (prefetcher) prefetcher->wait();
    cache.lookup(ids, std::span(out).first(static_cast<std::size_t>(n * dim)), &info);
    p.lookup_s += seconds_since(start);
    // The next batch's missing rows are read while this one's dense layer runs (not during its lookup,
    // whose own reads they would compete with).
    if (prefetcher && b + 1 < stream.batches()) prefetcher->prefetch(stream.at(b + 1));
    p.read_s += static_cast<double>(info.fill_ns) * 1e-9;
    if (b > 0) {
      p.resident += info.resident_at_start;
      p.unique += info.unique;
    }
    const auto compute_start = Clock::now();
    kernels::gemm(std::span<const float>(out.data(), static_cast<std::size_t>(n * dim)), n, layer,
                  std::span<float>(y.data(), static_cast<std::size_t>(n * hidden)));
    p.compute_s += seconds_since(compute_start);
  }
  if (prefetcher) prefetcher->wait();
  return p;
}

}  // namespace

StoreBenchResult run_store_bench(const StoreBenchOptions& o, std::span<const std::int64_t> ids,
                                 const std::function<void(double)>& progress) {
  if (o.batch <= 0) throw Error("embedding store benchmark: the batch must be positive");
  if (ids.empty()) throw Error("embedding store benchmark: no ids");
  StoreBenchResult r;
  RowStoreOptions so;
  so.io = o.io;
  {
    // Opened here only to check the inputs and read what they are; closed before any child starts.
    const std::shared_ptr<const RowStore> store = RowStore::open(o.store, so);
    store->check_ids(ids, "embedding store benchmark");
    r.rows = store->rows();
    r.dim = store->dim();
    r.store_bytes = store->file_bytes();
    r.storage = to_string(store->storage());
    r.io_backend = io::to_string(store->backend());
    r.direct_io = store->direct();
    r.io_fallback_reason = store->fallback_reason();
    r.ram_budget_bytes = o.ram_budget > 0
                             ? o.ram_budget
                             : HotRowCache::bytes_for(
                                   *store, o.policy,
                                   static_cast<std::int64_t>(o.cache_fraction * static_cast<double>(r.rows)));
    const auto check_float_store = [&](const std::string& path, const char* what) {
      if (path.empty()) return;
      RowStoreOptions want = so;
      want.expect_dim = r.dim;
      want.expect_storage = EmbeddingStorage::kF32;
      const auto other = RowStore::open(path, want);
      if (other->rows() != r.rows)
        throw Error(path + ": the " + what + " has " + std::to_string(other->rows()) + " rows, the store " +
                    std::to_string(r.rows));
    };
    check_float_store(o.fp32_store, "float32 store");
    check_float_store(o.fp32_table, "float32 table");
  }
  const Stream stream{ids, o.batch, o.warmup_batches};
  const Stream measured = stream.measured();
  if (measured.ids.empty()) throw Error("embedding store benchmark: the warm-up takes the whole stream");
  r.ids = static_cast<std::int64_t>(measured.ids.size());
  r.warmup_ids = static_cast<std::int64_t>(stream.warmup_ids());
  r.batches = measured.batches();
  const int steps = 2 + !o.fp32_store.empty() + !o.fp32_table.empty() + (o.prefetch ? 1 : 0);
  int done = 0;
  const auto tick = [&] {
    if (progress) progress(static_cast<double>(++done) / steps);
  };
  r.cached = path_in_child("cached", [&] { return run_cached(o, o.store, r.ram_budget_bytes, stream); });
  tick();
  r.uncached = path_in_child("uncached", [&] { return run_uncached(o, measured); });
  tick();
  if (!o.fp32_store.empty()) {
    r.fp32_store = path_in_child("float32 store",
                                 [&] { return run_cached(o, o.fp32_store, r.ram_budget_bytes, stream); });
    tick();
  }
  if (!o.fp32_table.empty()) {
    // Cold and warm passes in one process: its peak RSS is the mapping's pages both passes touched.
    struct ColdWarm {
      StorePathResult cold, warm;
    };
    const ChildResult<ColdWarm> c = in_child<ColdWarm>("float32 mmap", [&] {
      const RowStoreHeader h = read_row_store_header(o.fp32_table);
      io::drop_page_cache(o.fp32_table);
      const auto map = io::MappedFile::open(o.fp32_table);
      const auto* data = reinterpret_cast<const std::uint8_t*>(map->bytes().data()) + h.data_offset;
      std::vector<float> out(static_cast<std::size_t>(stream.batch * h.dim));
      ColdWarm cw;
      cw.cold.start_rss_bytes = cw.warm.start_rss_bytes = resident_bytes();
      const std::int64_t cached_before = meminfo_bytes("Cached:");
      cw.cold.seconds = mmap_pass(data, h.row_bytes, measured, out);
      // How much the OS page cache grew under the cold pass: memory the mapping takes that no RSS shows
      // (the whole machine's figure, so other processes' file reads count too).
      cw.cold.disk_bytes_read = std::max<std::int64_t>(0, meminfo_bytes("Cached:") - cached_before);
      cw.warm.seconds = mmap_pass(data, h.row_bytes, measured, out);
      return cw;
    });
    r.fp32_mmap_cold = c.value.cold;
    r.fp32_mmap_page_cache_bytes = c.value.cold.disk_bytes_read;
    r.fp32_mmap_cold.disk_bytes_read = 0;
    r.fp32_mmap_warm = c.value.warm;
    for (StorePathResult* p : {&r.fp32_mmap_cold, &r.fp32_mmap_warm}) {
      p->rows_per_s = static_cast<double>(measured.ids.size()) / p->seconds;
      p->peak_rss_bytes = c.peak_rss_bytes;
    }
    tick();
  }
  if (o.prefetch) {
    // Each pipeline in its own process, so neither inherits the other's warm state.
    struct Both {
      Pipeline without, with;
    };
    const Both both{
        in_child<Pipeline>("pipeline", [&] { return run_pipeline(o, r.ram_budget_bytes, stream, false); })
            .value,
        in_child<Pipeline>("prefetch pipeline", [&] {
          return run_pipeline(o, r.ram_budget_bytes, stream, true);
        }).value};
    const double n = static_cast<double>(r.batches);
    r.lookup_us_per_batch = both.without.lookup_s / n * 1e6;
    r.read_us_per_batch = both.without.read_s / n * 1e6;
    r.compute_us_per_batch = both.without.compute_s / n * 1e6;
    r.lookup_us_per_batch_prefetch = both.with.lookup_s / n * 1e6;
    r.prefetch_coverage =
        both.with.unique ? static_cast<double>(both.with.resident) / static_cast<double>(both.with.unique)
                         : 0;
    r.prefetch_hidden_fraction =
        both.without.read_s > 0 ? (both.without.lookup_s - both.with.lookup_s) / both.without.read_s : 0;
    tick();
  }
  const std::int64_t k = r.cached.cache_rows;
  // The oracles a warmed cache is judged against: a static cache of the whole stream's top k rows, filled
  // on first use from the stream's start (so the warm-up fills it as it fills the real cache), or
  // preloaded, counted over the measured ids. Without a warm-up they are oracle_hit_rates' two oracles.
  const std::vector<std::int64_t> top = top_rows(ids, r.rows, k);
  std::vector<bool> in_top(static_cast<std::size_t>(r.rows)), seen(static_cast<std::size_t>(r.rows));
  for (const std::int64_t id : top) in_top[static_cast<std::size_t>(id)] = true;
  std::int64_t hits = 0, preloaded_hits = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto id = static_cast<std::size_t>(ids[i]);
    if (i >= static_cast<std::size_t>(r.warmup_ids) && in_top[id]) {
      ++preloaded_hits;
      if (seen[id]) ++hits;
    }
    seen[id] = true;
  }
  r.oracle_hit_rate = static_cast<double>(hits) / static_cast<double>(r.ids);
  r.oracle_preloaded_hit_rate = static_cast<double>(preloaded_hits) / static_cast<double>(r.ids);
  return r;
}

}  // namespace qk::perf
