// run_gemm_bench: every case timed as the median of `repeat` calls after one warm-up call, with the
// weights rotated through copies that together exceed the last-level cache three times over.
#include "quantkit/perf/gemm_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "quantkit/core/error.hpp"
#include "quantkit/core/quantize.hpp"
#include "quantkit/kernels/gemm.hpp"
#include "quantkit/ptq/quantize_file.hpp"

namespace qk::perf {

namespace {

template <class F>
double median_us(int repeat, F&& call) {
  call(0);  // warm-up: first-touch of buffers, thread start-up
  std::vector<double> times;
  for (int i = 1; i <= repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    call(i);
    times.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2), times.end());
  return times[times.size() / 2];
}

std::vector<float> normal(std::size_t n, float stddev, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

struct Inputs {
  std::int64_t size, batch;
  std::vector<float> x1, xb;      // GEMV and GEMM activations
  std::vector<float> ref1, refb;  // FP32 outputs
};

// Times GEMV and GEMM for one format over rotating copies of its weights.
template <class Weights, class Call>
void bench_format(const char* format, const Weights& packed, Call&& call, Inputs& in, const BenchOptions& o,
                  BenchReport& report, const std::function<void(const std::string&)>& progress) {
  const std::int64_t bytes = kernels::weight_bytes(packed);
  const std::vector<Weights> copies(static_cast<std::size_t>(cold_copies(bytes)), packed);
  const auto pick = [&](int i) -> const Weights& {
    return copies[static_cast<std::size_t>(i) % copies.size()];
  };
  const double n2 = static_cast<double>(in.size) * static_cast<double>(in.size);
  for (const bool gemv : {true, false}) {
    const std::string name = std::string(gemv ? "gemv/" : "gemm/") + format;
    if (progress) progress(name);
    const std::int64_t batch = gemv ? 1 : in.batch;
    const std::vector<float>& x = gemv ? in.x1 : in.xb;
    std::vector<float> y(static_cast<std::size_t>(batch * in.size));
    BenchResult r;
    r.name = name;
    r.format = format;
    r.bytes = bytes;
    r.bits_per_weight = static_cast<double>(bytes) * 8.0 / n2;
    r.median_us = median_us(o.repeat, [&](int i) { call(x, batch, pick(i), y); });
    r.gbps = static_cast<double>(bytes) / (r.median_us * 1e3);
    r.gflops = 2.0 * static_cast<double>(batch) * n2 / (r.median_us * 1e3);
    call(x, batch, copies[0], y);
    std::vector<float>& ref = gemv ? in.ref1 : in.refb;
    if (std::strcmp(format, "fp32") == 0) {
      ref = y;
      r.speedup_vs_fp32 = 1.0;
    }
    r.max_abs_error = max_abs_diff(y, ref);
    for (const BenchResult& base : report.results) {
      if (base.name == (gemv ? "gemv/fp32" : "gemm/fp32")) r.speedup_vs_fp32 = base.median_us / r.median_us;
    }
    if (gemv && report.read_gbps > 0)
      r.fraction_of_limit = (static_cast<double>(bytes) / (report.read_gbps * 1e3)) / r.median_us;
    report.results.push_back(r);
  }
}

}  // namespace

BenchReport run_gemm_bench(const BenchOptions& o, const std::function<void(const std::string&)>& progress) {
  if (o.size < 1 || o.size > 32768) throw Error("bench: size must be in 1..32768");
  if (o.batch < 1 || o.batch > 4096) throw Error("bench: batch must be in 1..4096");
  if (o.threads < 1 || o.threads > 256) throw Error("bench: threads must be in 1..256");
  if (o.repeat < 1 || o.repeat > 10000) throw Error("bench: repeat must be in 1..10000");
  BenchReport report;
  report.machine = machine_info();
  report.options = o;
  report.cold = "each call reads the next of several copies of the weights, together >= 3x the " +
                std::to_string(report.machine.last_level_cache_bytes >> 20) + " MiB last-level cache";
  const std::int64_t n = o.size;
  const auto count = static_cast<std::size_t>(n * n);
  const std::vector<float> weights = normal(count, 0.02f, 1);
  Inputs in{n,
            o.batch,
            normal(static_cast<std::size_t>(n), 1.0f, 2),
            normal(static_cast<std::size_t>(o.batch * n), 1.0f, 3),
            {},
            {}};
  const kernels::GemmOptions gemm_options{.threads = o.threads};

  {
    // The streaming-read limit, over the same rotating FP32 copies the FP32 GEMV reads.
    const kernels::Fp32Weights fp32 = kernels::pack_fp32(weights, n, n);
    const std::int64_t bytes = kernels::weight_bytes(fp32);
    const std::vector<kernels::Fp32Weights> copies(static_cast<std::size_t>(cold_copies(bytes)), fp32);
    if (progress) progress("read bandwidth");
    std::uint64_t sink = 0;
    const double us = median_us(o.repeat, [&](int i) {
      sink += stream_read(copies[static_cast<std::size_t>(i) % copies.size()].values.data(), bytes);
    });
    report.read_gbps = static_cast<double>(bytes) / (us * 1e3) + static_cast<double>(sink & 1) * 1e-12;
  }
  bench_format(
      "fp32", kernels::pack_fp32(weights, n, n),
      [&](auto& x, std::int64_t b, auto& w, auto& y) { kernels::gemm(x, b, w, y, gemm_options); }, in, o,
      report, progress);
  bench_format(
      "fp16", kernels::pack_fp16(weights, n, n),
      [&](auto& x, std::int64_t b, auto& w, auto& y) { kernels::gemm(x, b, w, y, gemm_options); }, in, o,
      report, progress);
  bench_format(
      "int8", kernels::pack_int8(weights, n, n),
      [&](auto& x, std::int64_t b, auto& w, auto& y) { kernels::gemm(x, b, w, y, gemm_options); }, in, o,
      report, progress);
  bench_format(
      "int4", kernels::pack_int4(weights, n, n, 32),
      [&](auto& x, std::int64_t b, auto& w, auto& y) { kernels::gemm(x, b, w, y, gemm_options); }, in, o,
      report, progress);
  // Sort GEMVs before GEMMs, formats in the order above.
  std::stable_partition(report.results.begin(), report.results.end(),
                        [](const BenchResult& r) { return r.name.rfind("gemv/", 0) == 0; });

  // Quantize (observe per channel + quantize: what `qtool quantize` does), dequantize, memcpy: n*n floats.
  const TensorView<const float> view(weights.data(), {n, n});
  const QuantSpec spec = default_weight_spec(2);
  std::vector<std::int8_t> codes(count);
  std::vector<float> back(count);
  const auto float_bytes = static_cast<std::int64_t>(count * sizeof(float));
  auto add_stream_case = [&](const std::string& name, double us, std::optional<double> error) {
    BenchResult r;
    r.name = name;
    r.format = "int8";
    r.bytes = float_bytes;
    r.median_us = us;
    r.gbps = static_cast<double>(float_bytes) / (us * 1e3);
    r.max_abs_error = error;
    report.results.push_back(r);
  };
  if (progress) progress("quantize/int8");
  QuantParams params;
  const double quantize_us = median_us(o.repeat, [&](int) {
    params = choose_qparams<float>(view, spec);
    quantize<float, std::int8_t>(view, params, codes);
  });
  if (progress) progress("dequantize/int8");
  const TensorView<const std::int8_t> codes_view(codes.data(), {n, n});
  const double dequantize_us =
      median_us(o.repeat, [&](int) { dequantize<std::int8_t, float>(codes_view, params, back); });
  add_stream_case("quantize/int8", quantize_us, max_abs_diff(back, weights));
  add_stream_case("dequantize/int8", dequantize_us, std::nullopt);
  if (progress) progress("memcpy");
  const double memcpy_us =
      median_us(o.repeat, [&](int) { std::memcpy(back.data(), weights.data(), count * sizeof(float)); });
  add_stream_case("memcpy", memcpy_us, std::nullopt);
  report.results.back().format = "fp32";
  return report;
}

}  // namespace qk::perf
