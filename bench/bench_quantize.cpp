// Quantize / dequantize throughput over 16M floats (64 MiB, larger than any cache here), with a memcpy of
// the same bytes as the memory-bandwidth reference. Reports bytes/s of float data and items/s.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "quantkit/quantkit.hpp"

namespace {

constexpr std::int64_t kRows = 4096;
constexpr std::int64_t kCols = 4096;

const std::vector<float>& weights() {
  static const std::vector<float> w = [] {
    std::vector<float> v(static_cast<std::size_t>(kRows * kCols));
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    for (float& x : v) x = dist(rng);
    return v;
  }();
  return w;
}

void set_counters(benchmark::State& state) {
  state.SetBytesProcessed(state.iterations() * kRows * kCols * static_cast<std::int64_t>(sizeof(float)));
  state.SetItemsProcessed(state.iterations() * kRows * kCols);
}

void BM_memcpy(benchmark::State& state) {
  const auto& w = weights();
  std::vector<float> out(w.size());
  for (auto _ : state) {
    std::memcpy(out.data(), w.data(), w.size() * sizeof(float));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state);
}
BENCHMARK(BM_memcpy)->Unit(benchmark::kMillisecond);

void BM_observe_quantize_int8_per_channel(benchmark::State& state) {
  const auto& w = weights();
  const qk::TensorView<const float> view(w.data(), {kRows, kCols});
  const qk::QuantSpec spec = qk::default_weight_spec(2);
  std::vector<std::int8_t> q(w.size());
  for (auto _ : state) {
    const qk::QuantParams p = qk::kernels::choose_qparams<float>(view, spec);
    qk::kernels::quantize<float, std::int8_t>(view, p, q);
    benchmark::DoNotOptimize(q.data());
  }
  set_counters(state);
}
BENCHMARK(BM_observe_quantize_int8_per_channel)->Unit(benchmark::kMillisecond);

void BM_quantize_int8_given_params(benchmark::State& state) {
  const auto& w = weights();
  const qk::TensorView<const float> view(w.data(), {kRows, kCols});
  const qk::QuantParams p = qk::choose_qparams<float>(view, qk::default_weight_spec(2));
  std::vector<std::int8_t> q(w.size());
  for (auto _ : state) {
    qk::kernels::quantize_chunk<float, std::int8_t>(view.flat(), qk::channel_layout(view.shape(), p.spec), 0, p, q);
    benchmark::DoNotOptimize(q.data());
  }
  set_counters(state);
}
BENCHMARK(BM_quantize_int8_given_params)->Unit(benchmark::kMillisecond);

void BM_dequantize_int8(benchmark::State& state) {
  const auto& w = weights();
  const qk::TensorView<const float> view(w.data(), {kRows, kCols});
  const qk::QuantParams p = qk::choose_qparams<float>(view, qk::default_weight_spec(2));
  std::vector<std::int8_t> q(w.size());
  qk::kernels::quantize<float, std::int8_t>(view, p, q);
  std::vector<float> out(w.size());
  for (auto _ : state) {
    qk::kernels::dequantize_chunk<std::int8_t, float>(q, qk::channel_layout(view.shape(), p.spec), 0, p, out);
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state);
}
BENCHMARK(BM_dequantize_int8)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
