// GPTQ's cost: the Hessian accumulation from calibration rows and the column-by-column quantization, on
// square layers up to the target size (4096 x 4096 weights, 4096 calibration rows, 4-bit groups
// of 128, single thread; target: under 60 s). Times are reported per run (Iterations(1) at the large
// sizes: one run already takes seconds).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "perf/gemm_bench.hpp"
#include "quantkit/quantkit.hpp"

namespace {

std::vector<float> gaussian(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

void BM_HessianAccumulation(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const std::vector<float> x = gaussian(static_cast<std::size_t>(n * n), 1);
  for (auto _ : state) {
    qk::ActivationStats stats(n);
    stats.add(x, n);
    benchmark::DoNotOptimize(stats.rows());
  }
  state.SetItemsProcessed(state.iterations() * n);  // calibration rows
  state.SetLabel("n rows of width n, double X^T X");
}

void BM_Gptq(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const std::vector<float> x = gaussian(static_cast<std::size_t>(n * n), 1);
  const std::vector<float> w = gaussian(static_cast<std::size_t>(n * n), 2);
  qk::ActivationStats stats(n);
  stats.add(x, n);
  qk::WeightQuantOptions o;
  o.bits = 4;
  o.group_size = 128;
  for (auto _ : state) {
    const qk::QuantizedLinear q = qk::quantize_linear(w, n, n, &stats, qk::WeightMethod::kGptq, o);
    benchmark::DoNotOptimize(q.codes.data());
  }
  state.SetItemsProcessed(state.iterations() * n * n);  // weights
  state.SetLabel("4-bit g128, single thread; includes the Hessian inverse and the output error");
}

}  // namespace

BENCHMARK(BM_HessianAccumulation)->Arg(1024)->Arg(4096)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_Gptq)->Arg(1024)->Arg(2048)->Arg(4096)->Iterations(1)->Unit(benchmark::kSecond);

int main(int argc, char** argv) {
  const qk::perf::MachineInfo m = qk::perf::machine_info();
  benchmark::AddCustomContext("quantkit_cpu", m.cpu);
  benchmark::AddCustomContext("quantkit_note",
                              "Eigen in the library is built for baseline x86-64 (no -march)");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
