// run_gemm_bench: every case timed `repeat` times after a warm-up round, the cases interleaved round by
// round, with the weights rotated through copies that together exceed the last-level cache three times
// over. Times are reported as min/median/max; ratios (speedup over FP32, fraction of the read limit) are
// taken within each round and summarized as a median with its interquartile range, which is what keeps
// them steady from run to run on a shared machine: two cases of one round run milliseconds apart, while
// the noise (another tenant's memory traffic, frequency changes) lasts longer than that.
#include "perf/gemm_bench.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <utility>

#include "quantkit/core/block_formats.hpp"
#include "quantkit/core/error.hpp"
#include "quantkit/core/fp8.hpp"
#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/block_kernels.hpp"
#include "quantkit/kernels/fp8_kernels.hpp"
#include "quantkit/kernels/gemm.hpp"
#include "quantkit/kernels/ggml_gemv.hpp"
#include "quantkit/kernels/parallel.hpp"
#include "quantkit/kernels/quantize_tensor.hpp"
#include "quantkit/ptq/weight_spec.hpp"

namespace qk::perf {

namespace {

// A timed case: `call(i)` runs it on the i-th rotation of its inputs; results are filled in afterwards.
struct Case {
  BenchResult result;
  std::function<void(int)> call;
  std::vector<double> times_us;
};

// The q-quantile (0..1) of v, interpolating between neighbours as numpy.percentile does by default.
double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double at = q * static_cast<double>(v.size() - 1);
  const auto below = static_cast<std::size_t>(at);
  const std::size_t above = std::min(below + 1, v.size() - 1);
  return v[below] + (at - static_cast<double>(below)) * (v[above] - v[below]);
}

Spread spread_of(const std::vector<double>& v) {
  return {quantile(v, 0.5), quantile(v, 0.25), quantile(v, 0.75)};
}

// Round by round, numerator[r] / denominator[r].
std::vector<double> paired_ratios(const std::vector<double>& numerator,
                                  const std::vector<double>& denominator) {
  std::vector<double> ratios(numerator.size());
  for (std::size_t r = 0; r < ratios.size(); ++r) ratios[r] = numerator[r] / denominator[r];
  return ratios;
}

// Round-robin timing: every round times each case once, so a burst of noise from elsewhere on the
// machine (they last longer than one case) lands on all cases alike and the ratios survive it.
void time_cases(std::vector<Case>& cases, int repeat,
                const std::function<void(const std::string&)>& progress) {
  // Warm-up round, not timed: first touch of output buffers, thread start-up, the core's clock ramp.
  if (progress) progress("warm-up");
  for (auto& c : cases) c.call(0);
  for (int round = 1; round <= repeat; ++round) {
    if (progress) progress("round " + std::to_string(round) + " of " + std::to_string(repeat));
    for (auto& c : cases) {
      const auto start = std::chrono::steady_clock::now();
      c.call(round);
      c.times_us.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    }
  }
  for (auto& c : cases) {
    c.result.median_us = quantile(c.times_us, 0.5);
    c.result.min_us = *std::min_element(c.times_us.begin(), c.times_us.end());
    c.result.max_us = *std::max_element(c.times_us.begin(), c.times_us.end());
  }
}

std::vector<float> normal(std::size_t n, float stddev, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

double max_abs(const std::vector<float>& a) {
  double m = 0;
  for (const float v : a) m = std::max(m, std::fabs(static_cast<double>(v)));
  return m;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

struct Inputs {
  std::int64_t size, batch;
  int threads;
  std::int64_t between_calls;     // bytes the rest of a round moves between two calls of one case
  std::vector<float> x1, xb;      // GEMV and GEMM activations
  std::vector<float> ref1, refb;  // FP32 outputs
};

// GEMV and GEMM cases for one format over rotating copies of its weights; errors are measured here.
template <class Weights, class Call>
void add_format(const char* format, const Weights& packed, Call call, Inputs& in, std::vector<Case>& cases) {
  const std::int64_t bytes = kernels::weight_bytes(packed);
  const auto copies = std::make_shared<const std::vector<Weights>>(
      static_cast<std::size_t>(cold_copies(bytes, in.between_calls)), packed);
  const double n2 = static_cast<double>(in.size) * static_cast<double>(in.size);
  for (const bool gemv : {true, false}) {
    const std::int64_t batch = gemv ? 1 : in.batch;
    const std::vector<float>* x = gemv ? &in.x1 : &in.xb;
    auto y = std::make_shared<std::vector<float>>(static_cast<std::size_t>(batch * in.size));
    Case c;
    c.result.name = std::string(gemv ? "gemv/" : "gemm/") + format;
    c.result.format = format;
    c.result.bytes = bytes;
    c.result.bits_per_weight = static_cast<double>(bytes) * 8.0 / n2;
    c.result.gflops = 2.0 * static_cast<double>(batch) * n2;  // flops until divided by the time
    c.call = [=](int i) { call(*x, batch, (*copies)[static_cast<std::size_t>(i) % copies->size()], *y); };
    call(*x, batch, (*copies)[0], *y);
    std::vector<float>& ref = gemv ? in.ref1 : in.refb;
    if (std::strcmp(format, "fp32") == 0) ref = *y;
    c.result.max_abs_error = max_abs_diff(*y, ref);
    c.result.reference_max_abs = max_abs(ref);
    cases.push_back(std::move(c));
  }
}

// The 4-bit formats with a GEMV kernel only: their bytes (scales included) and an n x n GEMV.
std::int64_t weight_bytes(const Nf4Weights& w) {
  return static_cast<std::int64_t>(w.codes.size() + w.scales.size() * sizeof(float));
}
std::int64_t weight_bytes(const std::vector<BlockQ4DQ>& w) {
  return static_cast<std::int64_t>(w.size() * sizeof(BlockQ4DQ));
}
// ggml's block formats (Q8_0, Q4_0, Q4_K): an n x n matrix quantized row by row as ggml does.
struct GgmlWeights {
  ggml::Type type;
  std::vector<std::byte> bytes;
};
std::int64_t weight_bytes(const GgmlWeights& w) { return static_cast<std::int64_t>(w.bytes.size()); }
GgmlWeights quantize_ggml(ggml::Type type, const std::vector<float>& w, std::int64_t n) {
  const std::int64_t row = ggml::row_bytes(type, n);
  GgmlWeights q{type, std::vector<std::byte>(static_cast<std::size_t>(n * row))};
  for (std::int64_t r = 0; r < n; ++r)
    ggml::quantize_row(type, w.data() + r * n, n, q.bytes.data() + r * row);
  return q;
}
void gemv_of(const GgmlWeights& w, std::int64_t n, const std::vector<float>& x, std::vector<float>& y,
             int threads) {
  kernels::gemv_ggml(w.type, w.bytes, n, n, x, y, threads);
}
void gemv_of(const Nf4Weights& w, std::int64_t, const std::vector<float>& x, std::vector<float>& y,
             int threads) {
  kernels::gemv(w.view(), x, y, threads);
}
void gemv_of(const std::vector<BlockQ4DQ>& w, std::int64_t n, const std::vector<float>& x,
             std::vector<float>& y, int threads) {
  kernels::gemv(std::span<const BlockQ4DQ>(w), n, n, x, y, threads);
}

// A GEMV case for a format with a GEMV kernel only (NF4, Q4DQ, ggml's blocks), over rotating copies of its
// weights.
template <class Weights>
void add_block_gemv(const char* format, Weights weights, Inputs& in, std::vector<Case>& cases) {
  const std::int64_t bytes = weight_bytes(weights);
  const auto copies = std::make_shared<const std::vector<Weights>>(
      static_cast<std::size_t>(cold_copies(bytes, in.between_calls)), std::move(weights));
  const double n2 = static_cast<double>(in.size) * static_cast<double>(in.size);
  auto y = std::make_shared<std::vector<float>>(static_cast<std::size_t>(in.size));
  const std::int64_t n = in.size;
  const std::vector<float>* x = &in.x1;
  Case c;
  c.result.name = std::string("gemv/") + format;
  c.result.format = format;
  c.result.bytes = bytes;
  c.result.bits_per_weight = static_cast<double>(bytes) * 8.0 / n2;
  c.result.gflops = 2.0 * n2;
  const int threads = in.threads;
  c.call = [=](int i) {
    gemv_of((*copies)[static_cast<std::size_t>(i) % copies->size()], n, *x, *y, threads);
  };
  c.call(0);
  c.result.max_abs_error = max_abs_diff(*y, in.ref1);
  c.result.reference_max_abs = max_abs(in.ref1);
  cases.push_back(std::move(c));
}

}  // namespace

BenchReport run_gemm_bench(const BenchOptions& o, const std::function<void(const std::string&)>& progress) {
  if (o.size < 1 || o.size > 32768) throw Error("bench: size must be in 1..32768");
  if (o.batch < 1 || o.batch > 4096) throw Error("bench: batch must be in 1..4096");
  if (o.threads < 1 || o.threads > 256) throw Error("bench: threads must be in 1..256");
  if (o.repeat < 1 || o.repeat > 10000) throw Error("bench: repeat must be in 1..10000");
  const auto started = std::chrono::steady_clock::now();
  BenchReport report;
  report.machine = machine_info();
  report.options = o;
  report.cold =
      "between two calls of a case, the rest of the round and the case's rotating copies of its "
      "weights move >= 3x the " +
      std::to_string(report.machine.last_level_cache_bytes >> 20) + " MiB last-level cache";
  const std::int64_t n = o.size;
  // Int4 weights are the smallest; when even their copies stop at kMaxColdCopies, say so.
  if (cold_copies(std::max<std::int64_t>(1, n * n / 2), 27 * n * n) == kMaxColdCopies)
    report.cold += " (at this size, up to " + std::to_string(kMaxColdCopies) + " copies: partly cached)";
  const auto count = static_cast<std::size_t>(n * n);
  const auto weights = std::make_shared<const std::vector<float>>(normal(count, 0.02f, 1));
  // Every round moves at least these bytes besides the GEMV/GEMM weights: the streaming read (4 n^2),
  // quantize (4 n^2 in, n^2 out), dequantize INT8 and FP8 (n^2 in, 4 n^2 out each) and memcpy (4 n^2 each
  // way). At 4096^2 that is 432 MiB, far past any last-level cache, so one copy of each format's weights is
  // cold on every call; small sizes rotate through more copies (cold_copies).
  const std::int64_t streamed = 27 * n * n;
  Inputs in{n,
            o.batch,
            o.threads,
            streamed,
            normal(static_cast<std::size_t>(n), 1.0f, 2),
            normal(static_cast<std::size_t>(o.batch * n), 1.0f, 3),
            {},
            {}};
  kernels::GemmOptions gemm_options;
  gemm_options.threads = o.threads;
  const auto gemm = [gemm_options](const std::vector<float>& x, std::int64_t b, const auto& w,
                                   std::vector<float>& y) { kernels::gemm(x, b, w, y, gemm_options); };

  if (progress) progress("packing weights");
  std::vector<Case> cases;
  {
    // The streaming-read limit, over its own copies of the FP32 weights' bytes: not the weights vector
    // itself, which memcpy (the round's last case) has just read, leaving its tail in the cache for this
    // case, the next round's first (that made the read 45% faster than cold and every "of BW limit" low).
    const auto bytes = static_cast<std::int64_t>(count * sizeof(float));
    const auto copies = std::make_shared<std::vector<std::vector<float>>>(
        static_cast<std::size_t>(cold_copies(bytes, streamed - bytes)), *weights);
    auto sink = std::make_shared<std::uint64_t>(0);
    Case c;
    c.result.name = "read";
    c.result.bytes = bytes;
    // With several threads, each reads its own contiguous part (as the GEMVs split their rows).
    const int threads = o.threads;
    c.call = [copies, sink, bytes, threads](int i) {
      const auto* data =
          reinterpret_cast<const char*>((*copies)[static_cast<std::size_t>(i) % copies->size()].data());
      std::atomic<std::uint64_t> sum{0};
      kernels::parallel_for(bytes / 64, threads, 1024, [&](std::int64_t l0, std::int64_t l1) {
        sum += stream_read(data + l0 * 64, (l1 - l0) * 64);
      });
      *sink += sum.load();
    };
    cases.push_back(std::move(c));
  }
  add_format("fp32", kernels::pack_fp32(*weights, n, n), gemm, in, cases);
  add_format("fp16", kernels::pack_fp16(*weights, n, n), gemm, in, cases);
  add_format("int8", kernels::pack_int8(*weights, n, n), gemm, in, cases);
  add_format("int4", kernels::pack_int4(*weights, n, n, 32), gemm, in, cases);
  // The 4-bit formats need whole groups along each row (NF4: 64 weights, Q4DQ: 256).
  if (n % kNf4Block == 0) add_block_gemv("nf4", quantize_nf4(*weights, n), in, cases);
  if (n % BlockQ4DQ::kWeights == 0) add_block_gemv("q4dq", quantize_q4dq(*weights), in, cases);
  // ggml's blocks (32 weights; Q4_K: 256), x quantized to Q8_0 / Q8_K on each call as ggml does.
  for (const auto& [format, type] :
       {std::pair{"q8_0", ggml::Type::kQ8_0}, std::pair{"q4_0", ggml::Type::kQ4_0},
        std::pair{"q4_k", ggml::Type::kQ4_K}})
    if (n % ggml::traits(type).block_weights == 0)
      add_block_gemv(format, quantize_ggml(type, *weights, n), in, cases);
  // GEMVs before GEMMs, formats in the order above.
  std::stable_partition(cases.begin() + 1, cases.end(),
                        [](const Case& c) { return c.result.name.rfind("gemv/", 0) == 0; });

  // Quantize (observe per channel + quantize: what `qtool quantize` does), dequantize, memcpy: n*n floats.
  auto codes = std::make_shared<std::vector<std::int8_t>>(count);
  auto back = std::make_shared<std::vector<float>>(count);
  auto params = std::make_shared<QuantParams>();
  const auto float_bytes = static_cast<std::int64_t>(count * sizeof(float));
  auto add_stream_case = [&](const std::string& name, const char* format, std::function<void(int)> call) {
    Case c;
    c.result.name = name;
    c.result.format = format;
    c.result.bytes = float_bytes;
    c.call = std::move(call);
    cases.push_back(std::move(c));
  };
  add_stream_case("quantize/int8", "int8", [=](int) {
    const TensorView<const float> view(weights->data(), {n, n});
    *params = kernels::observe_and_quantize<float, std::int8_t>(view, default_weight_spec(2), *codes);
  });
  add_stream_case("dequantize/int8", "int8", [=](int) {
    kernels::dequantize<std::int8_t, float>(TensorView<const std::int8_t>(codes->data(), {n, n}), *params,
                                            *back);
  });
  // FP8 E4M3 codes of the weights (one scale per tensor), decoded by the dispatched SIMD kernel.
  const ChannelLayout whole{1, n * n, static_cast<std::int64_t>(count)};
  const auto fp8 = std::make_shared<const Fp8Quantized>(quantize_fp8(*weights, whole, Fp8Format::kE4M3));
  add_stream_case("dequantize/fp8-e4m3", "fp8-e4m3",
                  [=](int) { kernels::dequantize_fp8(fp8->codes, Fp8Format::kE4M3, fp8->scale[0], *back); });
  add_stream_case("memcpy", "fp32",
                  [=](int) { std::memcpy(back->data(), weights->data(), count * sizeof(float)); });

  time_cases(cases, o.repeat, progress);

  report.read_gbps = static_cast<double>(cases[0].result.bytes) / (cases[0].result.median_us * 1e3);
  const std::vector<double>& read_us = cases[0].times_us;
  const std::vector<double>*gemv_fp32_us = nullptr, *gemm_fp32_us = nullptr;
  for (const Case& c : cases) {
    if (c.result.name == "gemv/fp32") gemv_fp32_us = &c.times_us;
    if (c.result.name == "gemm/fp32") gemm_fp32_us = &c.times_us;
  }
  for (std::size_t i = 1; i < cases.size(); ++i) {
    BenchResult r = cases[i].result;
    const std::vector<double>& us = cases[i].times_us;
    r.gbps = static_cast<double>(r.bytes) / (r.median_us * 1e3);
    const bool gemv = r.name.rfind("gemv/", 0) == 0, gemm_case = r.name.rfind("gemm/", 0) == 0;
    if (gemv || gemm_case) {
      r.gflops /= r.median_us * 1e3;
      r.speedup_vs_fp32 = spread_of(paired_ratios(*(gemv ? gemv_fp32_us : gemm_fp32_us), us));
    }
    if (gemv) {
      // (bytes / read rate) / time = (bytes / read bytes) * read time / time, round by round.
      std::vector<double> fraction = paired_ratios(read_us, us);
      for (double& f : fraction)
        f *= static_cast<double>(r.bytes) / static_cast<double>(cases[0].result.bytes);
      r.fraction_of_limit = spread_of(fraction);
    }
    report.results.push_back(r);
  }
  // The round trip of quantize/int8: its codes dequantized, against the weights.
  std::vector<float>& round_trip = *back;  // the dequantize case's output buffer, no longer timed
  kernels::dequantize<std::int8_t, float>(TensorView<const std::int8_t>(codes->data(), {n, n}), *params,
                                          round_trip);
  for (BenchResult& r : report.results)
    if (r.name == "quantize/int8") {
      r.max_abs_error = max_abs_diff(round_trip, *weights);
      r.reference_max_abs = max_abs(*weights);
    }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace qk::perf
