// What machine a benchmark ran on: CPU model, kernel path, cache size (Linux sysfs / procfs).
#include <fstream>
#include <string>
#include <thread>

#include "perf/gemm_bench.hpp"
#include "quantkit/kernels/dispatch.hpp"

namespace qk::perf {

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

// "32768K" or "32M" -> bytes.
std::int64_t parse_size(const std::string& text) {
  std::size_t used = 0;
  std::int64_t n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (...) {
    return 0;
  }
  const char unit = used < text.size() ? text[used] : ' ';
  if (unit == 'K') return n << 10;
  if (unit == 'M') return n << 20;
  return n;
}

}  // namespace

std::int64_t last_level_cache_bytes() {
  std::int64_t best = 0;
  for (int index = 0; index < 8; ++index) {
    std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
    std::string text;
    if (in >> text) best = std::max(best, parse_size(text));
  }
  return best > 0 ? best : (std::int64_t{32} << 20);
}

int cold_copies(std::int64_t bytes, std::int64_t other_bytes) {
  if (bytes <= 0) return 1;
  const std::int64_t want = 3 * last_level_cache_bytes() - std::max<std::int64_t>(0, other_bytes);
  return static_cast<int>(std::clamp<std::int64_t>((want + bytes - 1) / bytes, 1, kMaxColdCopies));
}

MachineInfo machine_info() {
  MachineInfo m;
  m.cpu = cpu_model();
  m.isa = kernels::to_string(kernels::active_isa());
  m.detected_isa = kernels::to_string(kernels::detected_isa());
  m.logical_cpus = static_cast<int>(std::thread::hardware_concurrency());
  m.last_level_cache_bytes = last_level_cache_bytes();
  return m;
}

std::uint64_t stream_read(const void* data, std::int64_t bytes) {
  // Four independent lanes of 64-bit adds; the compiler vectorizes them into 16-byte (or wider) loads.
  const auto* p = static_cast<const std::uint64_t*>(data);
  const std::int64_t words = bytes / 8;
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  std::int64_t i = 0;
  for (; i + 4 <= words; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  for (; i < words; ++i) a += p[i];
  return a ^ b ^ c ^ d;
}

}  // namespace qk::perf
