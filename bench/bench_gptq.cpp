// GPTQ's and AWQ's cost: the Hessian accumulation from calibration rows and the quantization of square
// layers up to LLM size (4096 x 4096 weights, 4-bit groups of 128, single thread; GPTQ's target: under
// 60 s with 4096 calibration rows; AWQ's: no slower than GPTQ on the same layer with 1024 rows, peak RSS
// within twice the layer plus the activation statistics). Times are reported per run (Iterations(1) at
// the large sizes: one run already takes seconds); AWQ also reports its peak RSS and output error.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <fstream>
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
  double error = 0;
  for (auto _ : state) {
    const qk::QuantizedLinear q = qk::quantize_linear(w, n, n, &stats, qk::WeightMethod::kGptq, o);
    error = q.output_error;
    benchmark::DoNotOptimize(q.codes.data());
  }
  state.counters["output_error"] = error;
  state.SetItemsProcessed(state.iterations() * n * n);  // weights
  state.SetLabel("4-bit g128, single thread; includes the Hessian inverse and the output error");
}

// Peak resident set so far, in MiB (Linux reports ru_maxrss in KiB).
double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Lowers the peak RSS mark to the current RSS (Linux >= 4.0), so that one benchmark's peak is not an
// earlier one's; elsewhere the counter is the process's peak so far.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// The same layer as BM_Gptq, calibrated on min(n, 1024) rows (the 4096 x 4096 case). H is formed
// as qtool forms it, in the statistics' own storage (take_hessian: no copy of X^T X).
void BM_Awq(benchmark::State& state) {
  const std::int64_t n = state.range(0), rows = std::min<std::int64_t>(n, 1024);
  qk::ActivationStats stats(n);
  stats.add(gaussian(static_cast<std::size_t>(rows * n), 1), rows);
  const qk::SquareMatrix h = stats.take_hessian();
  const std::vector<float> w = gaussian(static_cast<std::size_t>(n * n), 2);
  qk::WeightQuantOptions o;
  o.bits = 4;
  o.group_size = 128;
  reset_peak_rss();
  const double before = peak_rss_mib();
  double error = 0;
  for (auto _ : state) {
    const qk::QuantizedLinear q = qk::quantize_linear(w, n, n, &stats, h, qk::WeightMethod::kAwq, o);
    error = q.output_error;
    benchmark::DoNotOptimize(q.codes.data());
  }
  state.counters["rss_before_MiB"] = before;  // the layer and the statistics (H)
  state.counters["peak_rss_MiB"] = peak_rss_mib();
  state.counters["output_error"] = error;
  state.SetItemsProcessed(state.iterations() * n * n);  // weights
  state.SetLabel("4-bit g128, single thread; includes the search, clip and output error");
}

}  // namespace

BENCHMARK(BM_HessianAccumulation)->Arg(1024)->Arg(4096)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_Gptq)->Arg(1024)->Arg(2048)->Arg(4096)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_Awq)->Arg(1024)->Arg(4096)->Iterations(1)->Unit(benchmark::kSecond);

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
