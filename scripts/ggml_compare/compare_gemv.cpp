// quantkit's GEMV on ggml's blocks against ggml's own CPU kernels, on the same bytes, in one run.
// Not built by the project (it links ggml); build it by hand, as README's Benchmarks section says:
//   a ggml checkout built with -DGGML_NATIVE=ON (its best kernels for this CPU), then
//   g++ -O2 -std=c++20 compare_gemv.cpp -I<quantkit>/include -I<ggml>/include \
//       <quantkit build>/src/libquantkit.a <ggml build>/src/libggml-cpu.a <ggml build>/src/libggml-base.a
//       -lpthread
//
// For each of Q8_0, Q4_0 and Q4_K: a 4096 x 4096 matrix of Gaussian weights quantized by ggml
// (ggml_quantize_chunk), then rounds that time, interleaved, a streaming read and both GEMVs (one thread),
// each on the next of enough copies of its weights that every call reads them from memory. ggml's GEMV is
// what its mul_mat does on one thread: x to the type's vec_dot_type with from_float, then vec_dot per row.
// Prints the median time of each, the fraction of the read limit, ggml time / quantkit time taken round
// by round, and the largest difference between the two outputs relative to the largest output.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "ggml-cpu.h"
#include "ggml.h"
#include "quantkit/core/ggml_blocks.hpp"
#include "quantkit/kernels/ggml_gemv.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::int64_t kN = 4096;
constexpr int kCopies = 8;  // 8 x >= 9 MiB per format, with the other cases: well past a 32 MiB L3
constexpr int kRounds = 21;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::uint64_t stream_read(const std::byte* p, std::size_t n) {
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  const auto* w = reinterpret_cast<const std::uint64_t*>(p);
  for (std::size_t i = 0; i + 4 <= n / 8; i += 4) {
    a += w[i];
    b += w[i + 1];
    c += w[i + 2];
    d += w[i + 3];
  }
  return a ^ b ^ c ^ d;
}

}  // namespace

int main() {
  ggml_cpu_init();
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> w(static_cast<std::size_t>(kN * kN)), x(static_cast<std::size_t>(kN));
  for (float& v : w) v = dist(rng);
  for (float& v : x) v = dist(rng) * 50.0f;
  // The read limit: each round reads a different slice of a buffer far larger than the caches.
  std::vector<std::byte> read_buf(static_cast<std::size_t>(kCopies * kN * kN * 2), std::byte{1});
  std::printf("one thread, %lld x %lld, %d rounds, ggml built with GGML_NATIVE\n", static_cast<long long>(kN),
              static_cast<long long>(kN), kRounds);
  const struct {
    const char* name;
    ggml_type g;
    qk::ggml::Type q;
  } types[] = {{"q8_0", GGML_TYPE_Q8_0, qk::ggml::Type::kQ8_0},
               {"q4_0", GGML_TYPE_Q4_0, qk::ggml::Type::kQ4_0},
               {"q4_k", GGML_TYPE_Q4_K, qk::ggml::Type::kQ4_K}};
  for (const auto& t : types) {
    const std::size_t row = ggml_row_size(t.g, kN);
    std::vector<std::vector<std::byte>> copies(kCopies, std::vector<std::byte>(row * kN));
    ggml_quantize_chunk(t.g, w.data(), copies[0].data(), 0, kN, kN, nullptr);
    for (int c = 1; c < kCopies; ++c) copies[c] = copies[0];
    const ggml_type_traits_cpu* traits = ggml_get_type_traits_cpu(t.g);
    std::vector<std::byte> xq(ggml_row_size(traits->vec_dot_type, kN));
    std::vector<float> y_ggml(kN), y_qk(kN);
    const auto run_ggml = [&](const std::vector<std::byte>& m) {
      ggml_get_type_traits_cpu(traits->vec_dot_type)->from_float(x.data(), xq.data(), kN);
      for (std::int64_t r = 0; r < kN; ++r)
        traits->vec_dot(static_cast<int>(kN), &y_ggml[r], 0, m.data() + r * row, 0, xq.data(), 0, 1);
    };
    const auto run_qk = [&](const std::vector<std::byte>& m) {
      qk::kernels::gemv_ggml(t.q, m, kN, kN, x, y_qk);
    };
    std::vector<double> t_read, t_ggml, t_qk;
    std::uint64_t sink = 0;
    for (int round = -1; round < kRounds; ++round) {  // round -1: warm-up
      const auto& m = copies[static_cast<std::size_t>(round + 1) % kCopies];
      auto s = clock_type::now();
      sink +=
          stream_read(read_buf.data() + static_cast<std::size_t>(round + 1) % kCopies * m.size(), m.size());
      const double a = std::chrono::duration<double, std::micro>(clock_type::now() - s).count();
      s = clock_type::now();
      run_ggml(m);
      const double b = std::chrono::duration<double, std::micro>(clock_type::now() - s).count();
      s = clock_type::now();
      run_qk(copies[static_cast<std::size_t>(round + 5) % kCopies]);
      const double c = std::chrono::duration<double, std::micro>(clock_type::now() - s).count();
      if (round >= 0) t_read.push_back(a), t_ggml.push_back(b), t_qk.push_back(c);
    }
    std::vector<double> ratio;
    for (std::size_t i = 0; i < t_qk.size(); ++i) ratio.push_back(t_ggml[i] / t_qk[i]);
    double diff = 0, scale = 0;
    for (std::int64_t r = 0; r < kN; ++r) {
      diff = std::max(diff, static_cast<double>(std::fabs(y_ggml[r] - y_qk[r])));
      scale = std::max(scale, static_cast<double>(std::fabs(y_ggml[r])));
    }
    const double bytes = static_cast<double>(row * kN);
    std::printf(
        "%s: %.2f bits/weight; read %.1f GB/s; ggml %.0f us (%.2f of the read limit); quantkit %.0f us "
        "(%.2f); "
        "ggml/quantkit time %.2fx; max |y diff| %.2g of max |y| (sink %llu)\n",
        t.name, bytes * 8 / (kN * kN), bytes / median(t_read) / 1e3, median(t_ggml),
        median(t_read) / median(t_ggml), median(t_qk), median(t_read) / median(t_qk), median(ratio),
        diff / scale, static_cast<unsigned long long>(sink % 10));
  }
  return 0;
}
