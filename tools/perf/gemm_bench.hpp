// The benchmark behind `qtool bench`: FP32 (Eigen), FP16, INT8 and INT4 GEMV (batch 1) and GEMM
// (batch B) on a size x size weight matrix, GEMV on NF4, Q4DQ and ggml's Q8_0 / Q4_0 / Q4_K blocks,
// quantize/dequantize of size^2 floats, memcpy of the same
// bytes and the streaming-read bandwidth that bounds every GEMV, all measured in one run so that the
// ratios between them mean something on a noisy machine.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace qk::perf {

struct MachineInfo {
  std::string cpu;           // model name from /proc/cpuinfo
  std::string isa;           // the kernel path in use (scalar, avx2, avx512vnni)
  std::string detected_isa;  // the best path this CPU supports
  int logical_cpus = 0;
  std::int64_t last_level_cache_bytes = 0;
};
MachineInfo machine_info();

struct BenchOptions {
  std::int64_t size = 4096;  // weights are size x size
  std::int64_t batch = 64;   // GEMM rows of X
  int threads = 1;
  int repeat = 21;  // rounds; each round times every case once (interleaved), after one warm-up round
};

// The spread of a figure over the rounds: its median and the interquartile range around it.
struct Spread {
  double median = 0, low = 0, high = 0;  // low/high: 25th and 75th percentiles
};

struct BenchResult {
  std::string name;  // gemv/fp32 ... gemv/q4_k, gemm/fp32 ... gemm/int4, quantize/int8, ..., memcpy
  std::string format;
  double bits_per_weight = 0;  // GEMV/GEMM only: weight bytes * 8 / (size * size)
  std::int64_t bytes = 0;      // weight bytes (GEMV/GEMM) or float bytes (quantize, dequantize, memcpy)
  double median_us = 0;
  double min_us = 0, max_us = 0;  // the fastest and slowest of the rounds
  double gbps = 0;                // bytes / median time
  double gflops = 0;              // GEMV/GEMM: 2 * batch * size^2 / median time
  // GEMV/GEMM: FP32 time / this time (same batch), taken round by round (both cases ran within a few
  // milliseconds of each other, so noise that lasts longer cancels) and summarized over the rounds.
  std::optional<Spread> speedup_vs_fp32;
  // GEMV: (bytes / read bandwidth) / this time, the read timed in the same round.
  std::optional<Spread> fraction_of_limit;
  std::optional<double> max_abs_error;      // GEMV/GEMM: against the FP32 output; quantize: round trip
  std::optional<double> reference_max_abs;  // the largest |value| that error is measured against (FP32
                                            // output or the weights), so the error reads relative to it
};

struct BenchReport {
  MachineInfo machine;
  BenchOptions options;
  double read_gbps = 0;  // streaming read of the FP32 weights on options.threads threads (the GEMV limit)
  std::string cold;      // how weights are kept out of the caches
  std::vector<BenchResult> results;
  double seconds = 0;  // the whole run: preparing the weights, the warm-up and the timed rounds
};

// Runs every case; `progress` (optional) is told what starts: the preparation, the warm-up, each round.
BenchReport run_gemm_bench(const BenchOptions& options,
                           const std::function<void(const std::string&)>& progress = {});

// Helpers shared with bench/: the last-level cache size (sysfs; 32 MiB when unknown) and how many
// copies of `bytes` rotate so that, between two calls on one copy, at least three times that cache size
// passes through: the other copies plus `other_bytes`, what the other cases between the two calls move.
// At most kMaxColdCopies: below about 3x the cache / 256 (400 KB for a 32 MiB cache) weights are small
// enough to stay partly cached, as they would in a real model of that size.
inline constexpr std::int64_t kMaxColdCopies = 256;
std::int64_t last_level_cache_bytes();
int cold_copies(std::int64_t bytes, std::int64_t other_bytes = 0);
// Reads `bytes` bytes as fast as one core can; the result only keeps the loads from being optimized out.
std::uint64_t stream_read(const void* data, std::int64_t bytes);

}  // namespace qk::perf
