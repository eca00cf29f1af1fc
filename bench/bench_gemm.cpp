// GEMV (batch 1) and GEMM (batch 64) at 4096x4096 for every weight format, with the weights cold: each
// iteration reads the next of several copies that together exceed the last-level cache three times.
// Reports weight bytes/s and multiply-adds as items/s (GFLOP/s = 2 * items/s), plus the streaming-read
// and memcpy bandwidth of the FP32 weights' 64 MiB, the limit every GEMV is judged against.
//
// BM_gemm_* go through gemm() (activation quantization, the dispatched variant). BM_kernel_<family>/<name>
// run every variant of the GEMM registries (gemm_kernels.hpp) directly, the micro-kernel alone on one
// thread, with activations quantized once outside the timed loop; BM_gemv_<format>/<name> do the same for
// the GEMV-only registries (NF4, Q4DQ: block_kernels.hpp; ggml's Q8_0, Q4_0, Q4_K: ggml_gemv.hpp). A variant
// this CPU cannot run is still registered, so --benchmark_list_tests shows every variant, and is skipped with
// SkipWithError("this CPU lacks <isa>").
#include <benchmark/benchmark.h>

#include <array>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "perf/gemm_bench.hpp"
#include "quantkit/core/block_formats.hpp"
#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/kernels/block_kernels.hpp"
#include "quantkit/kernels/gemm.hpp"
#include "quantkit/kernels/gemm_kernels.hpp"
#include "quantkit/kernels/ggml_gemv.hpp"

namespace {

using namespace qk::kernels;

constexpr std::int64_t kSize = 4096;

const std::vector<float>& float_weights() {
  static const std::vector<float> w = [] {
    std::vector<float> v(static_cast<std::size_t>(kSize * kSize));
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    for (float& x : v) x = dist(rng);
    return v;
  }();
  return w;
}

Int4Weights pack_int4_g32(std::span<const float> w, std::int64_t r, std::int64_t c) {
  return pack_int4(w, r, c, 32);
}
Int4Weights pack_int4_g128(std::span<const float> w, std::int64_t r, std::int64_t c) {
  return pack_int4(w, r, c, 128);
}

// One set of cold copies per packing function (not per weight type: INT4 g32 and g128 differ).
template <auto Pack>
const auto& cold_set() {
  using Weights = decltype(Pack(std::span<const float>{}, 0, 0));
  static const std::vector<Weights> copies = [] {
    const Weights w = Pack(float_weights(), kSize, kSize);
    return std::vector<Weights>(static_cast<std::size_t>(qk::perf::cold_copies(weight_bytes(w))), w);
  }();
  return copies;
}

std::vector<float> activations(std::int64_t batch) {
  std::vector<float> x(static_cast<std::size_t>(batch * kSize));
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float& v : x) v = dist(rng);
  return x;
}

template <class Weights, class Call>
void run(benchmark::State& state, const std::vector<Weights>& copies, Call&& call) {
  const std::int64_t batch = state.range(0);
  const std::vector<float> x = activations(batch);
  std::vector<float> y(static_cast<std::size_t>(batch * kSize));
  std::size_t i = 0;
  for (auto _ : state) {
    call(x, batch, copies[i++ % copies.size()], y);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * weight_bytes(copies[0]));
  state.SetItemsProcessed(state.iterations() * batch * kSize * kSize);
  state.counters["copies"] = static_cast<double>(copies.size());
}

auto plain = [](auto& x, std::int64_t b, auto& w, auto& y) { gemm(x, b, w, y); };

void BM_gemm_fp32_eigen(benchmark::State& s) { run(s, cold_set<pack_fp32>(), plain); }
void BM_gemm_fp16(benchmark::State& s) { run(s, cold_set<pack_fp16>(), plain); }
void BM_gemm_int8(benchmark::State& s) { run(s, cold_set<pack_int8>(), plain); }
void BM_gemm_int8_float_activations(benchmark::State& s) {
  run(s, cold_set<pack_int8>(),
      [](auto& x, std::int64_t b, auto& w, auto& y) { gemm_float_activations(x, b, w, y); });
}
void BM_gemm_int4_g32(benchmark::State& s) { run(s, cold_set<pack_int4_g32>(), plain); }
void BM_gemm_int4_g128(benchmark::State& s) { run(s, cold_set<pack_int4_g128>(), plain); }

#define QK_GEMM_BENCH(fn) BENCHMARK(fn)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime()
QK_GEMM_BENCH(BM_gemm_fp32_eigen);
QK_GEMM_BENCH(BM_gemm_fp16);
QK_GEMM_BENCH(BM_gemm_int8);
QK_GEMM_BENCH(BM_gemm_int8_float_activations);
QK_GEMM_BENCH(BM_gemm_int4_g32);
QK_GEMM_BENCH(BM_gemm_int4_g128);

// One registered variant on the whole of W, one thread. 4096 columns are a whole number of every
// format's column step, so X needs no padding; INT8/INT4 activations are quantized once, per row.
// Skips the benchmark (and says why) when this CPU cannot run the variant.
bool skip_unsupported(benchmark::State& state, Isa isa) {
  static const std::array<std::string, 3> lacks = {"this CPU lacks scalar", "this CPU lacks avx2",
                                                   "this CPU lacks avx512vnni"};
  if (cpu_supports(isa)) return false;
  state.SkipWithError(lacks[static_cast<std::size_t>(isa)].c_str());
  return true;
}

template <auto Pack, class Fn>
void bench_variant(benchmark::State& state, const KernelVariant<Fn>& v) {
  if (skip_unsupported(state, v.isa)) return;
  const auto& copies = cold_set<Pack>();
  const std::int64_t batch = state.range(0);
  const std::vector<float> x = activations(batch);
  std::vector<float> y(static_cast<std::size_t>(batch * kSize));
  QuantizedActivations xq;
  if constexpr (std::is_same_v<Fn, GemmInt8Fn> || std::is_same_v<Fn, GemmInt4Fn>)
    quantize_activations(x.data(), batch, kSize, copies[0].stride, ActivationScaling::kPerRow, xq);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& w = copies[i++ % copies.size()];
    if constexpr (std::is_same_v<Fn, GemmInt8Fn> || std::is_same_v<Fn, GemmInt4Fn>)
      v.fn(xq, w, 0, w.rows, y.data());
    else
      v.fn(x.data(), batch, w, 0, w.rows, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * weight_bytes(copies[0]));
  state.SetItemsProcessed(state.iterations() * batch * kSize * kSize);
  state.SetLabel(std::string(v.name) + " (" + to_string(v.isa) + ")");
}

template <auto Pack, class Fn>
void register_variants(const std::string& family, std::span<const KernelVariant<Fn>> variants) {
  for (const KernelVariant<Fn>& v : variants) {
    benchmark::RegisterBenchmark(("BM_kernel_" + family + "/" + v.name).c_str(),
                                 [v](benchmark::State& s) { bench_variant<Pack>(s, v); })
        ->Arg(1)
        ->Arg(64)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
}

void register_all_variants() {
  register_variants<pack_fp32>("fp32", gemm_fp32_variants());
  register_variants<pack_fp16>("fp16", gemm_fp16_variants());
  register_variants<pack_int8>("int8", gemm_int8_variants());
  register_variants<pack_int8>("int8_float", gemm_int8_float_variants());
  register_variants<pack_int4_g32>("int4_g32", gemm_int4_variants());
  register_variants<pack_int4_g128>("int4_g128", gemm_int4_variants());
}

// --- GEMV-only formats: each registered variant on cold copies of an n x n matrix, one thread ---------

using qk::BlockQ4DQ;
using qk::Nf4Weights;

std::int64_t weight_bytes(const Nf4Weights& w) {
  return static_cast<std::int64_t>(w.codes.size() + w.scales.size() * sizeof(float));
}
std::int64_t weight_bytes(const std::vector<BlockQ4DQ>& w) {
  return static_cast<std::int64_t>(w.size() * sizeof(BlockQ4DQ));
}
std::int64_t weight_bytes(const std::vector<std::byte>& w) { return static_cast<std::int64_t>(w.size()); }

// Cold copies of one format's weights, made on first use (Tag tells formats of one C++ type apart).
template <auto Tag, class Make>
const auto& gemv_copies(Make make) {
  static const auto copies = [&] {
    const auto w = make();
    return std::vector<std::remove_const_t<decltype(w)>>(
        static_cast<std::size_t>(qk::perf::cold_copies(weight_bytes(w))), w);
  }();
  return copies;
}

const std::vector<float>& gemv_x() {
  static const std::vector<float> x = activations(1);
  return x;
}

template <class Weights, class Call>
void run_gemv(benchmark::State& state, const std::vector<Weights>& copies, Call&& call) {
  std::vector<float> y(static_cast<std::size_t>(kSize));
  std::size_t i = 0;
  for (auto _ : state) {
    call(copies[i++ % copies.size()], y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * weight_bytes(copies[0]));
  state.SetItemsProcessed(state.iterations() * kSize * kSize);
  state.counters["copies"] = static_cast<double>(copies.size());
}

void register_block_gemvs() {
  for (const auto& v : gemv_nf4_variants())
    benchmark::RegisterBenchmark(
        ("BM_gemv_nf4/" + std::string(v.name)).c_str(),
        [v](benchmark::State& s) {
          if (skip_unsupported(s, v.isa)) return;
          const auto& copies = gemv_copies<0>([] { return qk::quantize_nf4(float_weights(), kSize); });
          run_gemv(s, copies, [&](const Nf4Weights& w, float* y) {
            v.fn(w.codes.data(), w.scales.data(), kSize, kSize, w.group_size, gemv_x().data(), y);
          });
        })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  for (const auto& v : gemv_q4dq_variants())
    benchmark::RegisterBenchmark(("BM_gemv_q4dq/" + std::string(v.name)).c_str(),
                                 [v](benchmark::State& s) {
                                   if (skip_unsupported(s, v.isa)) return;
                                   const auto& copies =
                                       gemv_copies<1>([] { return qk::quantize_q4dq(float_weights()); });
                                   run_gemv(s, copies, [&](const std::vector<BlockQ4DQ>& w, float* y) {
                                     v.fn(w.data(), kSize, kSize, gemv_x().data(), y);
                                   });
                                 })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
}

// ggml's blocks: x quantized once (Q8_0, or Q8_K for Q4_K) outside the timed loop, as the micro-kernel
// sees it.
template <qk::ggml::Type kType, class Block, class XBlock, class Fn>
void register_ggml(const char* format, std::span<const KernelVariant<Fn>> variants) {
  for (const auto& v : variants)
    benchmark::RegisterBenchmark(
        ("BM_gemv_" + std::string(format) + "/" + v.name).c_str(),
        [v](benchmark::State& s) {
          if (skip_unsupported(s, v.isa)) return;
          const auto& copies = gemv_copies<kType>([] {
            const std::int64_t row = qk::ggml::row_bytes(kType, kSize);
            std::vector<std::byte> w(static_cast<std::size_t>(kSize * row));
            for (std::int64_t r = 0; r < kSize; ++r)
              qk::ggml::quantize_row(kType, float_weights().data() + r * kSize, kSize, w.data() + r * row);
            return w;
          });
          std::vector<XBlock> xq;
          if constexpr (std::is_same_v<XBlock, BlockQ8K>) {
            xq.resize(static_cast<std::size_t>(kSize / qk::ggml::kSuperBlock));
            quantize_row_q8_k(gemv_x().data(), kSize, xq.data());
          } else {
            xq.resize(static_cast<std::size_t>(kSize / qk::ggml::kBlock));
            qk::ggml::quantize_row(qk::ggml::Type::kQ8_0, gemv_x().data(), kSize,
                                   reinterpret_cast<std::byte*>(xq.data()));
          }
          run_gemv(s, copies, [&](const std::vector<std::byte>& w, float* y) {
            v.fn(reinterpret_cast<const Block*>(w.data()), kSize, kSize, xq.data(), y);
          });
        })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
}

void register_ggml_gemvs() {
  using qk::ggml::Type;
  register_ggml<Type::kQ8_0, qk::ggml::BlockQ8_0, qk::ggml::BlockQ8_0>("q8_0", gemv_q8_0_variants());
  register_ggml<Type::kQ4_0, qk::ggml::BlockQ4_0, qk::ggml::BlockQ8_0>("q4_0", gemv_q4_0_variants());
  register_ggml<Type::kQ4_K, qk::ggml::BlockQ4_K, BlockQ8K>("q4_k", gemv_q4_k_variants());
}

// The bandwidth references, over the same rotating FP32 copies.
void BM_stream_read(benchmark::State& state) {
  const auto& copies = cold_set<pack_fp32>();
  const std::int64_t bytes = weight_bytes(copies[0]);
  std::size_t i = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(qk::perf::stream_read(copies[i++ % copies.size()].values.data(), bytes));
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(BM_stream_read)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_memcpy(benchmark::State& state) {
  const auto& w = float_weights();
  std::vector<float> out(w.size());
  for (auto _ : state) {
    std::memcpy(out.data(), w.data(), w.size() * sizeof(float));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(w.size() * sizeof(float)));
}
BENCHMARK(BM_memcpy)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  const qk::perf::MachineInfo m = qk::perf::machine_info();
  benchmark::AddCustomContext("quantkit_cpu", m.cpu);
  benchmark::AddCustomContext("quantkit_isa", m.isa + " (CPU supports " + m.detected_isa + ")");
  benchmark::AddCustomContext("quantkit_cold_weights", "rotating copies >= 3x the last-level cache");
  register_all_variants();
  register_block_gemvs();
  register_ggml_gemvs();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
