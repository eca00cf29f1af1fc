// The embedding cache's targets in one run: a Zipf(1.05) stream of 1M ids over a 1M x 256 table, batches
// of 512, single thread. Lookup cases report rows/s (items) and output bytes/s; Targets runs the whole
// qtool-embed measurement once and reports the ratios and the prefetch figures as counters. The
// OneHot cases show what the dense one-hot form costs against the sparse gather at a small vocabulary.
// The Small cases: a GloVe-sized 100k x 100 table (int8 10.4 MB, in the last-level cache; float32 40 MB)
// read by a natural-language id stream, modelled as Zipf(1.0) (Zipf's law of word frequencies).
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "perf/embed_bench.hpp"
#include "perf/gemm_bench.hpp"
#include "quantkit/quantkit.hpp"

namespace {

constexpr std::int64_t kRows = 1000000, kDim = 256, kBatch = 512;

struct Fixture {
  std::shared_ptr<const qk::EmbeddingTable> fp32, int8, int4;
  std::vector<std::int64_t> ids;
};

Fixture make_fixture(std::int64_t rows, std::int64_t dim, std::int64_t ids, double exponent) {
  Fixture x;
  const std::vector<float> values = qk::synthetic_table(rows, dim, 2);
  const qk::TensorView<const float> view(values.data(), {rows, dim});
  x.fp32 =
      std::make_shared<qk::EmbeddingTable>(qk::EmbeddingTable::from_floats(view, qk::EmbeddingStorage::kF32));
  x.int8 = std::make_shared<qk::EmbeddingTable>(
      qk::EmbeddingTable::from_floats(view, qk::EmbeddingStorage::kInt8));
  x.int4 = std::make_shared<qk::EmbeddingTable>(
      qk::EmbeddingTable::from_floats(view, qk::EmbeddingStorage::kInt4));
  qk::ZipfStreamOptions z;
  z.rows = rows;
  z.length = ids;
  z.exponent = exponent;
  x.ids = qk::zipf_stream(z);
  return x;
}

const Fixture& fixture() {
  static const Fixture f = make_fixture(kRows, kDim, 1000000, 1.05);
  return f;
}

void finish(benchmark::State& state, std::int64_t ids) {
  state.SetItemsProcessed(state.iterations() * ids);
  state.SetBytesProcessed(state.iterations() * ids * kDim * 4);
  state.SetLabel(qk::perf::machine_info().isa);
}

void BM_Fp32Gather(benchmark::State& state) {
  const auto& f = fixture();
  std::vector<float> out(kBatch * kDim);
  for (auto _ : state) {
    for (std::size_t s = 0; s + kBatch <= f.ids.size(); s += kBatch)
      for (std::int64_t i = 0; i < kBatch; ++i)
        std::memcpy(out.data() + i * kDim, f.fp32->row_data(f.ids[s + i]), kDim * 4);
    benchmark::DoNotOptimize(out.data());
  }
  finish(state, static_cast<std::int64_t>(f.ids.size()) / kBatch * kBatch);
}

void BM_Uncached(benchmark::State& state) {
  const auto& f = fixture();
  const auto& table = state.range(0) == 8 ? *f.int8 : *f.int4;
  std::vector<float> out(kBatch * kDim);
  for (auto _ : state) {
    for (std::size_t s = 0; s + kBatch <= f.ids.size(); s += kBatch)
      qk::embedding_lookup(table, std::span(f.ids).subspan(s, kBatch), out);
    benchmark::DoNotOptimize(out.data());
  }
  finish(state, static_cast<std::int64_t>(f.ids.size()) / kBatch * kBatch);
}

// range(0): bits; range(1): policy (0 lru, 1 lfu); range(2): cache rows. Each iteration starts empty.
void BM_Cached(benchmark::State& state) {
  const auto& f = fixture();
  const auto table = state.range(0) == 8 ? f.int8 : f.int4;
  qk::HotRowCacheOptions o;
  o.policy = state.range(1) == 0 ? qk::CachePolicy::kLru : qk::CachePolicy::kLfu;
  o.capacity_rows = state.range(2);
  std::vector<float> out(kBatch * kDim);
  double hit_rate = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto cache = std::make_unique<qk::HotRowCache>(table, o);
    state.ResumeTiming();
    for (std::size_t s = 0; s + kBatch <= f.ids.size(); s += kBatch)
      cache->lookup(std::span(f.ids).subspan(s, kBatch), out);
    benchmark::DoNotOptimize(out.data());
    hit_rate = cache->stats().hit_rate();
  }
  state.counters["hit_rate"] = hit_rate;
  finish(state, static_cast<std::int64_t>(f.ids.size()) / kBatch * kBatch);
}

void BM_Targets(benchmark::State& state) {
  const auto& f = fixture();
  qk::perf::EmbedBenchOptions o;
  o.cache_fraction = static_cast<double>(state.range(0)) / 1000.0;
  o.prefetch = true;
  qk::perf::EmbedBenchResult r;
  for (auto _ : state) r = qk::perf::run_embed_bench(*f.int8, *f.fp32, f.ids, o);
  state.counters["hit_rate"] = r.hit_rate;
  state.counters["lfu_vs_oracle"] = r.hit_rate / r.oracle_hit_rate;
  state.counters["cached_vs_uncached"] = r.cached_rows_per_s / r.uncached_rows_per_s;
  state.counters["cached_vs_fp32"] = r.cached_rows_per_s / r.fp32_rows_per_s;
  state.counters["memory_vs_fp32"] =
      static_cast<double>(r.table_bytes + r.cache_bytes) / static_cast<double>(r.fp32_table_bytes);
  state.counters["prefetch_coverage"] = r.prefetch_coverage;
  state.counters["prefetch_hidden"] = r.prefetch_hidden_fraction;
  state.SetLabel(qk::perf::machine_info().isa);
}

constexpr std::int64_t kSmallRows = 100000, kSmallDim = 100;

const Fixture& small_fixture() {
  static const Fixture f = make_fixture(kSmallRows, kSmallDim, 2000 * kBatch, 1.0);
  return f;
}

// range(0): 32 = the float32 gather (a memcpy per id), 8 = the uncached int8 lookup.
void BM_SmallTable(benchmark::State& state) {
  const auto& f = small_fixture();
  std::vector<float> out(kBatch * kSmallDim);
  for (auto _ : state) {
    for (std::size_t s = 0; s + kBatch <= f.ids.size(); s += kBatch) {
      const auto batch = std::span(f.ids).subspan(s, kBatch);
      if (state.range(0) == 32) {
        for (std::int64_t i = 0; i < kBatch; ++i)
          std::memcpy(out.data() + i * kSmallDim, f.fp32->row_data(batch[i]), kSmallDim * 4);
      } else {
        qk::embedding_lookup(*f.int8, batch, out);
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
  const auto ids = static_cast<std::int64_t>(f.ids.size());
  state.SetItemsProcessed(state.iterations() * ids);
  state.SetBytesProcessed(state.iterations() * ids * kSmallDim * 4);
  state.SetLabel(std::string(state.range(0) == 32 ? "fp32 gather " : "int8 lookup ") +
                 qk::perf::machine_info().isa);
}

// The target in one run (median of 5 passes each): int8 uncached rows/s over the float32 gather's, and
// the int8 table's bytes over the float32 table's.
void BM_SmallTableTargets(benchmark::State& state) {
  const auto& f = small_fixture();
  qk::perf::EmbedBenchOptions o;
  o.repeats = 5;
  qk::perf::EmbedBenchResult r;
  for (auto _ : state) r = qk::perf::run_embed_bench(*f.int8, *f.fp32, f.ids, o);
  state.counters["uncached_vs_fp32"] = r.uncached_rows_per_s / r.fp32_rows_per_s;
  state.counters["cached_vs_fp32"] = r.cached_rows_per_s / r.fp32_rows_per_s;
  state.counters["memory_vs_fp32"] =
      static_cast<double>(r.table_bytes) / static_cast<double>(r.fp32_table_bytes);
  state.SetLabel(qk::perf::machine_info().isa);
}

// Dense one-hot (batch x vocab) times the table against the sparse gather, vocab 4096, dim 64.
void BM_OneHot(benchmark::State& state) {
  const std::int64_t vocab = 4096, dim = 64;
  const std::vector<float> values = qk::synthetic_table(vocab, dim, 3);
  const auto table = qk::EmbeddingTable::from_floats(qk::TensorView<const float>(values.data(), {vocab, dim}),
                                                     qk::EmbeddingStorage::kF32);
  qk::ZipfStreamOptions z;
  z.rows = vocab;
  z.length = kBatch;
  const auto ids = qk::zipf_stream(z);
  std::vector<float> out(kBatch * dim);
  for (auto _ : state) {
    if (state.range(0) == 1) {
      qk::dense_onehot_lookup(values, vocab, dim, ids, out);
    } else {
      qk::embedding_lookup(table, ids, out);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetLabel(state.range(0) == 1 ? "dense one-hot" : "sparse");
}

BENCHMARK(BM_Fp32Gather)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Uncached)->Arg(8)->Arg(4)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Cached)->ArgsProduct({{8, 4}, {0, 1}, {10000, 50000}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Targets)->Arg(10)->Arg(50)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_SmallTable)->Arg(32)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SmallTableTargets)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_OneHot)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
